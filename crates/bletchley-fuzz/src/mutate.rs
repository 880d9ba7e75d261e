//! The mutator: stacked byte-level edits, values that trip length and count fields, tokens that
//! matter to text formats, and splices of two corpus inputs.

/// A small, seedable generator (xorshift64*): runs repeat from their seed.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Values that sit on the edges of length and count fields.
const INTERESTING: [u64; 12] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// Tokens of the text formats the decoders read (JSON, HTTP, banners, queries, MIME, PDF).
const TOKENS: [&str; 28] = [
    "0",
    "-1",
    "\"",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\n",
    "\r\n",
    "\r\n\r\n",
    "/",
    "//",
    "\\",
    "\\u0000",
    "99999999999999999999",
    "null",
    "true",
    "%PDF",
    "endobj",
    "stream",
    "--",
    "Content-Length: ",
    "REL TO ",
    "AND",
    "*",
    "~",
];

/// One to four edits of `base` (occasionally spliced with `other`), at most `max` bytes.
pub fn mutate(rng: &mut Rng, base: &[u8], other: &[u8], max: usize) -> Vec<u8> {
    let mut v = base.to_vec();
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        let len = v.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next_u64() as u8;
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                v.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                v.drain(at..at + n);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(256));
                let chunk = v[at..at + n].to_vec();
                let to = rng.below(len + 1);
                v.splice(to..to, chunk);
            }
            5 if len > 0 => {
                let value = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1usize, 2, 4, 8][rng.below(4)];
                let bytes = if rng.below(2) == 0 {
                    value.to_be_bytes()[8 - width..].to_vec()
                } else {
                    value.to_le_bytes()[..width].to_vec()
                };
                let at = rng.below(len);
                for (k, b) in bytes.into_iter().enumerate() {
                    if let Some(slot) = v.get_mut(at + k) {
                        *slot = b;
                    }
                }
            }
            6 => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            7 if len > 0 => {
                v.truncate(rng.below(len));
            }
            8 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let at = rng.below(len + 1);
                v.splice(at..at, t.iter().copied());
            }
            _ => {
                // A run of one byte: long names, deep nesting, big numbers.
                let at = rng.below(len + 1);
                let b = [b'a', b'(', b'[', b'{', b'9', 0u8][rng.below(6)];
                let n = 1 + rng.below(512);
                v.splice(at..at, std::iter::repeat_n(b, n));
            }
        }
    }
    v.truncate(max);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_stay_within_the_cap_and_differ_from_their_base() {
        let mut rng = Rng::new(7);
        let base = b"{\"a\": [1, 2, 3]}".to_vec();
        let mut changed = 0;
        for _ in 0..1000 {
            let m = mutate(&mut rng, &base, b"xyz", 64);
            assert!(m.len() <= 64);
            changed += usize::from(m != base);
        }
        assert!(changed > 900, "{changed}");
    }
}
