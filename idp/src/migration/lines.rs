//! A JSON Lines file read as it arrives, one record at a time: never whole,
//! and never more than [`MAX_LINE_BYTES`] of one line (a 2 GB file of a
//! single line is refused after reading through it, in bounded memory).

use std::io::BufRead;

use super::record::{ImportRecord, Refusal, parse_line};

/// No record of docs/migration.md comes near: a hash is at most 1 KiB, a
/// name 200 characters.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The records of `reader` with their line numbers (from 1); blank lines are
/// skipped. A read error ends the file with a refusal on the line it hit.
pub struct Records<R> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Records<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The next line into `buf`, or `Ok(false)` at the end. `Ok(true)` with
    /// `too_long` set when the line exceeded the limit (what was kept of it
    /// is dropped, the rest read through without keeping it).
    fn next_line(&mut self, too_long: &mut bool) -> std::io::Result<bool> {
        self.buf.clear();
        *too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(any);
            }
            any = true;
            let (part, ends) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], Some(i + 1)),
                None => (chunk, None),
            };
            if self.buf.len() + part.len() > MAX_LINE_BYTES {
                // The rest of the line is read through, not kept (std's
                // search for the line break is the fast one, even in tests).
                *too_long = true;
                self.buf = Vec::new();
                self.reader.skip_until(b'\n')?;
                return Ok(true);
            }
            self.buf.extend_from_slice(part);
            let used = ends.unwrap_or(chunk.len());
            self.reader.consume(used);
            if ends.is_some() {
                return Ok(true);
            }
        }
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = (usize, Result<ImportRecord, Refusal>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let mut too_long = false;
            let read = self.next_line(&mut too_long);
            self.line += 1;
            match read {
                Err(e) => {
                    self.done = true;
                    return Some((
                        self.line,
                        Err(Refusal::new(format!(
                            "the file could not be read from here on: {e}"
                        ))),
                    ));
                }
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Ok(true) if too_long => {
                    return Some((
                        self.line,
                        Err(Refusal::new(format!(
                            "longer than {} KiB: not a record",
                            MAX_LINE_BYTES / 1024
                        ))),
                    ));
                }
                Ok(true) => {}
            }
            let mut bytes = self.buf.as_slice();
            if self.line == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some((self.line, parse_line(bytes)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> Vec<(usize, Result<String, String>)> {
        Records::new(std::io::BufReader::with_capacity(7, input))
            .map(|(n, r)| {
                (
                    n,
                    r.map(|r| r.email.as_str().to_owned())
                        .map_err(|e| e.reason().to_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn lines_are_numbered_blank_ones_skipped_and_long_ones_refused_alone() {
        let mut input = b"\xEF\xBB\xBF{\"email\": \"a@example.com\"}\r\n\n  \n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1));
        input.extend(b"\n{\"email\": \"b@example.com\"}\n{\"email\": \"c@example.com\"}");
        let got = read(&input);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], (1, Ok("a@example.com".into())));
        assert_eq!(got[1].0, 4);
        assert!(
            got[1]
                .1
                .as_ref()
                .unwrap_err()
                .contains("longer than 64 KiB")
        );
        assert_eq!(got[2], (5, Ok("b@example.com".into())));
        assert_eq!(got[3], (6, Ok("c@example.com".into())), "no final newline");
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_read() {
        let record = b"{\"email\": \"a@example.com\"}";
        let mut input = record.to_vec();
        input.extend(std::iter::repeat_n(b' ', MAX_LINE_BYTES - record.len()));
        assert_eq!(read(&input), vec![(1, Ok("a@example.com".into()))]);
    }
}
