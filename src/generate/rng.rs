//! splitmix64 (Steele, Lea, Flood 2014), the generator's only source of variety: tiny, fast, and
//! good enough to make data look varied. Nothing here needs cryptographic or statistical quality,
//! and a crate would be one more dependency for thirty lines.

use crate::model::Id;

#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    /// An independent stream for `stream` (e.g. a patient number): the seed and the stream number
    /// are both mixed, so neighbouring numbers do not give neighbouring sequences.
    pub(super) fn stream(seed: u64, stream: u64) -> Rng {
        Rng(mix(seed ^ mix(stream.wrapping_add(0x5EED))))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (multiply-shift; its bias is far below anything a benchmark could see).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `low..=high`.
    pub(super) fn between(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as u64) as i64
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An id shaped like the server's own (a version-4 UUID), drawn from this stream.
    pub(super) fn uuid(&mut self) -> Id {
        let (a, b) = (self.next_u64(), self.next_u64());
        let a = (a & !0xF000) | 0x4000; // version 4
        let b = (b & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
        let text = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        );
        Id::parse(&text).expect("a UUID is a valid id")
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_uuids_and_streams_differ() {
        let mut rng = Rng::stream(1, 1);
        let id = rng.uuid();
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(Rng::stream(1, 2).uuid(), Rng::stream(1, 1).uuid());
        assert_eq!(Rng::stream(1, 1).uuid(), id);
    }

    #[test]
    fn between_stays_inside_its_bounds_and_reaches_both() {
        let mut rng = Rng::stream(5, 0);
        let draws: Vec<i64> = (0..1000).map(|_| rng.between(-2, 2)).collect();
        assert!(draws.iter().all(|d| (-2..=2).contains(d)));
        assert!(draws.contains(&-2) && draws.contains(&2));
    }
}
