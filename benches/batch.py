#!/usr/bin/env python3
"""Loading resources by id: the same resources as Bundles of PUTs, sent as `transaction` or as `batch`.

    benches/batch.py BASE transaction|batch CLIENTS SIZE DIR [DIR …]

Reads every resource of the transaction Bundles in the DIRs (Synthea's: `urn:uuid:` fullUrls and
POSTs), gives each the id of its uuid and rewrites references between them to `Type/id`, the way
Bulk Data NDJSON is loaded by id, and posts them in Bundles of SIZE `PUT Type/id` entries, of the
given type, from CLIENTS threads at once, with `Prefer: return=minimal`. Every entry must answer
`201 Created`, else the run stops. Prints the resources written, the wall time and resources per
second.
"""

import concurrent.futures
import json
import pathlib
import sys
import time

import requests


def resources(dirs):
    """Every entry's resource, with its uuid as id and references rewritten."""
    found, ids = [], {}
    for directory in dirs:
        for path in sorted(pathlib.Path(directory).glob("*.json")):
            for entry in json.loads(path.read_text())["entry"]:
                resource = entry["resource"]
                full_url = entry.get("fullUrl", "")
                if full_url.startswith("urn:uuid:"):
                    resource["id"] = full_url[len("urn:uuid:"):]
                    ids[full_url] = f"{resource['resourceType']}/{resource['id']}"
                found.append(resource)
    def rewrite(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "reference" and isinstance(item, str) and item in ids:
                    value[key] = ids[item]
                else:
                    rewrite(item)
        elif isinstance(value, list):
            for item in value:
                rewrite(item)

    rewrite(found)
    return found


def bundles(all_resources, kind, size):
    for start in range(0, len(all_resources), size):
        chunk = all_resources[start:start + size]
        yield {
            "resourceType": "Bundle",
            "type": kind,
            "entry": [
                {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                for r in chunk
            ],
        }


def post(session, base, bundle):
    response = session.post(
        base,
        data=json.dumps(bundle),
        headers={"Content-Type": "application/fhir+json", "Prefer": "return=minimal"},
    )
    if response.status_code != 200:
        raise SystemExit(f"HTTP {response.status_code}: {response.text[:500]}")
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    # A few resources (shared Organizations, Practitioners) come in several Bundles: 200 the second time.
    bad = [s for s in statuses if not s.startswith(("200", "201"))]
    if bad:
        raise SystemExit(f"{len(bad)} entries did not answer 201: {bad[:3]}")
    return len(statuses)


def main():
    base, kind, clients, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    all_resources = resources(sys.argv[5:])
    work = list(bundles(all_resources, kind, size))
    sessions = [requests.Session() for _ in range(clients)]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        written = sum(pool.map(lambda n: post(sessions[n % clients], base, work[n]), range(len(work))))
    elapsed = time.perf_counter() - started
    print(f"{kind}: {written} resources in {len(work)} Bundles of {size} in {elapsed:.1f} s: "
          f"{written / elapsed:,.0f} resources/s")


if __name__ == "__main__":
    main()
