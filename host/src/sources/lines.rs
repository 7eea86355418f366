//! Cutting a byte stream into lines and lines into decoded batches, shared by the sources
//! that read streams (file, stdin).

use crate::decode::{format_timestamp, Decoding, DECODE_ERROR_FIELD};
use crate::event::Record;
use crate::telemetry::ComponentTelemetry;
use serde_json::Value;

/// Splits bytes into lines without ever holding more than `max_line_bytes` of one line:
/// the rest of an oversized line is skipped, and the kept part is flagged, so a 100 MB line
/// costs no more memory than a normal one and loses nothing around it.
pub struct LineSplitter {
    max: usize,
    partial: Vec<u8>,
    overflow: usize,
    /// Stream offset of the next byte pushed, and of the first byte of the partial line.
    consumed: u64,
    line_start: u64,
}

/// One complete line: its bytes, how many bytes were cut off it, and where it started in
/// the stream (so an error can say where the bad line is).
pub struct Line {
    pub bytes: Vec<u8>,
    pub truncated: usize,
    pub offset: u64,
}

impl LineSplitter {
    pub fn new(max_line_bytes: usize) -> Self {
        Self::starting_at(max_line_bytes, 0)
    }

    /// For a stream resumed at `offset` (a file read from its checkpoint).
    pub fn starting_at(max_line_bytes: usize, offset: u64) -> Self {
        Self {
            max: max_line_bytes.max(1),
            partial: Vec::new(),
            overflow: 0,
            consumed: offset,
            line_start: offset,
        }
    }

    /// Feeds a chunk; complete lines are pushed to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<Line>) {
        while let Some(pos) = memchr(b'\n', chunk) {
            self.append(&chunk[..pos]);
            let mut bytes = std::mem::take(&mut self.partial);
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            out.push(Line {
                bytes,
                truncated: std::mem::take(&mut self.overflow),
                offset: self.line_start,
            });
            self.consumed += pos as u64 + 1;
            self.line_start = self.consumed;
            chunk = &chunk[pos + 1..];
        }
        self.consumed += chunk.len() as u64;
        self.append(chunk);
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = self.max.saturating_sub(self.partial.len());
        let take = room.min(bytes.len());
        self.partial.extend_from_slice(&bytes[..take]);
        self.overflow += bytes.len() - take;
    }

    /// Bytes of an unfinished line held back until its newline arrives.
    pub fn pending(&self) -> usize {
        self.partial.len() + self.overflow
    }

    /// At end of input, the unterminated last line, if any.
    pub fn finish(&mut self) -> Option<Line> {
        if self.pending() == 0 {
            return None;
        }
        let line = Line {
            bytes: std::mem::take(&mut self.partial),
            truncated: std::mem::take(&mut self.overflow),
            offset: self.line_start,
        };
        self.line_start = self.consumed;
        Some(line)
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Decodes lines into records and stamps each with a receive time when the line had none.
pub struct LineBatcher {
    pub decoding: Decoding,
    /// Extra fields added to every record (e.g. the file path).
    pub extra: Vec<(String, Value)>,
}

impl LineBatcher {
    /// Decodes a batch of lines from `place` (a file path, `stdin`). Lines that did not
    /// decode as asked are counted (`error_kind="decode"`) and logged, rate-limited, with
    /// where they are and why; the records keep them, flagged.
    pub fn decode_all(
        &self,
        lines: impl IntoIterator<Item = Line>,
        place: &str,
        telemetry: &ComponentTelemetry,
    ) -> Vec<Record> {
        lines
            .into_iter()
            .map(|line| {
                let record = self.decode(&line);
                if let Some(Value::String(reason)) = record.get(DECODE_ERROR_FIELD) {
                    telemetry.error("decode");
                    telemetry.warn_limited(
                        "decode",
                        &format!(
                            "{place}: line at byte {}: {reason}; shipped as text with `decode_error`",
                            line.offset
                        ),
                    );
                }
                record
            })
            .collect()
    }

    pub fn decode(&self, line: &Line) -> Record {
        let mut record = self.decoding.decode(&line.bytes);
        if line.truncated > 0 {
            let note = format!(
                "line too long: kept the first {} bytes, dropped {} more (raise max_line_bytes to keep them)",
                line.bytes.len(),
                line.truncated
            );
            record.insert(DECODE_ERROR_FIELD.into(), Value::String(note));
        }
        if !record.contains_key("timestamp") {
            record.insert(
                "timestamp".into(),
                Value::String(format_timestamp(chrono::Utc::now())),
            );
        }
        for (k, v) in &self.extra {
            record.entry(k.clone()).or_insert_with(|| v.clone());
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<(Vec<u8>, usize)> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out.extend(s.finish());
        out.into_iter().map(|l| (l.bytes, l.truncated)).collect()
    }

    #[test]
    fn each_line_knows_where_it_started() {
        let mut s = LineSplitter::starting_at(4, 100);
        let mut out = Vec::new();
        s.push(b"ab\nlong line\nc", &mut out);
        s.push(b"d\n", &mut out);
        s.push(b"tail", &mut out);
        out.extend(s.finish());
        let offsets: Vec<u64> = out.iter().map(|l| l.offset).collect();
        assert_eq!(offsets, vec![100, 103, 113, 116]);
        assert_eq!(out[1].truncated, 5);
    }

    #[test]
    fn joins_lines_across_chunks_and_strips_crlf() {
        let lines = split(100, &[b"ab", b"c\r\nde", b"f\n", b"tail"]);
        assert_eq!(
            lines,
            vec![
                (b"abc".to_vec(), 0),
                (b"def".to_vec(), 0),
                (b"tail".to_vec(), 0)
            ]
        );
    }

    #[test]
    fn oversized_lines_are_cut_not_lost_and_neighbours_survive() {
        let big = vec![b'x'; 1000];
        let lines = split(10, &[b"before\n", &big, &big, b"\nafter\n"]);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], (b"before".to_vec(), 0));
        assert_eq!(lines[1], (vec![b'x'; 10], 1990));
        assert_eq!(lines[2], (b"after".to_vec(), 0));
    }

    #[test]
    fn truncated_lines_are_flagged_in_the_record() {
        let b = LineBatcher {
            decoding: Decoding::Text,
            extra: vec![("file".into(), Value::from("/x.log"))],
        };
        let r = b.decode(&Line {
            bytes: b"abc".to_vec(),
            truncated: 5,
            offset: 0,
        });
        assert!(r[DECODE_ERROR_FIELD]
            .as_str()
            .unwrap()
            .contains("dropped 5 more"));
        assert_eq!(r["file"], "/x.log");
        assert!(r.contains_key("timestamp"));
    }
}
