#!/usr/bin/env python3
"""Search latency over HTTP: each query N times in a row on one keep-alive connection.

    benches/search_latency.py BASE [N] [BUDGET]

BASE is the FHIR base URL (http://host:port/fhir/R4). The values the queries need (a patient id,
an MRN, a family-name prefix, a name) are read from the server first, so this script knows nothing
of how the data set was made beyond it having Patients with MRN identifiers of system
https://example.org/mrn, and Observations and Conditions about them.

A query stops repeating once BUDGET seconds (default 60) went into it, so one pathological query
cannot hold the run for hours; its line then says how many runs it had. Queries matching the
regular expression in the environment variable SKIP are listed but not run (a single run of some
can take longer than the whole benchmark, and the server would go on executing an abandoned one).
Prints p50 and p99 in milliseconds per query, the matches each query returned (Bundle.total when
present, else the entries on the first page), and the overall figures. A last line relates the
time of `_summary=count` to the total it returns (matches counted per second).

With FHIR_TOKEN set in the environment, every request carries it as its bearer token (a server
with authorization on; see benches/auth.sh).
"""

import math
import os
import re
import statistics
import sys
import time
import urllib.parse

import requests

MRN_SYSTEM = "https://example.org/mrn"


def fetch(session, base, query):
    """One GET of `query` (a path with query string, relative to base), as JSON; fails on non-2xx."""
    response = session.get(f"{base}/{query}", headers={"Accept": "application/fhir+json"})
    if response.status_code != 200:
        raise SystemExit(f"{query}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


def pick_values(session, base):
    """A patient to aim the queries at, taken from the server itself: the one with MRN-1, which
    every generated data set has, so runs at different sizes aim at the same patient (and the
    same name prefix); any patient when there is none."""
    bundle = fetch(session, base, f"Patient?identifier={urllib.parse.quote(MRN_SYSTEM + '|MRN-1', safe='')}")
    if not bundle.get("entry"):
        bundle = fetch(session, base, "Patient?_count=1")
    if not bundle.get("entry"):
        raise SystemExit("the server has no Patient: load a data set first")
    patient = bundle["entry"][0]["resource"]
    mrn = next(
        (i["value"] for i in patient.get("identifier", []) if i.get("system") == MRN_SYSTEM),
        None,
    )
    if mrn is None:
        raise SystemExit(f"Patient/{patient['id']} has no identifier of system {MRN_SYSTEM}")
    family = patient["name"][0]["family"]
    return {
        "id": patient["id"],
        "identifier": f"{MRN_SYSTEM}|{mrn}",
        "family": family,
        # A prefix of a common family name: the default string match is starts-with.
        "prefix": family[:3],
    }


def queries(v):
    q = urllib.parse.quote
    identifier = q(v["identifier"], safe="")
    return [
        f"Patient?name={q(v['prefix'])}",
        "Patient?birthdate=gt1960-01-01&_count=20",
        f"Patient?identifier={identifier}",
        "Observation?code=http://loinc.org|8302-2&_count=20",
        f"Observation?patient={v['id']}&_count=1000",
        f"Observation?subject.name={q(v['family'])}&_count=20",
        f"Patient?identifier={identifier}&_revinclude=Observation:subject",
        "Observation?code=http://loinc.org|8302-2&_summary=count",
        "Observation?code=http://loinc.org|8302-2&_sort=-date&_count=20",
        "Observation?subject.gender=female&_count=20",
        "Condition?code=http://snomed.info/sct|44054006",
    ]


def matches(bundle):
    if "total" in bundle:
        return bundle["total"]
    return sum(1 for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match")


def percentile(sorted_ms, p):
    # Nearest rank: with 100 runs, p99 is the second slowest.
    index = max(0, min(len(sorted_ms) - 1, math.ceil(p / 100 * len(sorted_ms)) - 1))
    return sorted_ms[index]


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    base = sys.argv[1].rstrip("/")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    session = requests.Session()  # one keep-alive connection for every request
    if os.environ.get("FHIR_TOKEN"):
        session.headers["Authorization"] = f"Bearer {os.environ['FHIR_TOKEN']}"
    values = pick_values(session, base)
    print(f"patient {values['id']}, identifier {values['identifier']}, name prefix {values['prefix']!r}")
    print(f"{'p50 ms':>8} {'p99 ms':>8} {'matches':>8}  query ({runs} runs each after one warm-up, or {budget:.0f} s)")
    everything = []
    count_seconds = count_total = None
    skip = re.compile(os.environ["SKIP"]) if os.environ.get("SKIP") else None
    for query in queries(values):
        if skip and skip.search(query):
            print(f"{'-':>8} {'-':>8} {'-':>8}  {query}  [skipped]")
            continue
        bundle = fetch(session, base, query)  # warm-up, and the match count
        times = []
        while len(times) < runs and sum(times) < budget * 1000:
            started = time.perf_counter()
            fetch(session, base, query)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        everything.extend(times)
        cut = f"  [{len(times)} runs: budget spent]" if len(times) < runs else ""
        print(f"{percentile(times, 50):8.2f} {percentile(times, 99):8.2f} {matches(bundle):>8}  {query}{cut}")
        if "_summary=count" in query:
            count_seconds, count_total = statistics.median(times) / 1000, bundle.get("total", 0)
    everything.sort()
    print(f"{percentile(everything, 50):8.2f} {percentile(everything, 99):8.2f} {'':>8}  overall")
    if count_seconds:
        print(
            f"count throughput: {count_total} matches in {count_seconds * 1000:.1f} ms (p50) = "
            f"{count_total / count_seconds:,.0f} matches/s"
        )


if __name__ == "__main__":
    main()
