//! One batch on disk: `SLB1`, payload length (u32 LE), CRC-32 of the payload (u32 LE), then
//! the records as MessagePack. The magic lets a reader find the next good frame after a
//! damaged region; the checksum tells it a region is damaged.

use crate::event::Record;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const MAGIC: [u8; 4] = *b"SLB1";
pub const HEADER: usize = 12;
/// No batch is this large; a length above it is damage, not data.
const MAX_PAYLOAD: u64 = 1 << 30;

pub fn encode(records: &[Record], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0; 8]);
    rmp_serde::encode::write(out, records).expect("JSON values always encode");
    let len = (out.len() - HEADER) as u32;
    let crc = crc32fast::hash(&out[HEADER..]);
    out[4..8].copy_from_slice(&len.to_le_bytes());
    out[8..12].copy_from_slice(&crc.to_le_bytes());
}

pub enum Frame {
    /// The records and the frame's length on disk.
    Good(Vec<Record>, u64),
    /// Wrong magic, a length past `limit`, a checksum mismatch or undecodable records.
    Damaged,
}

/// Reads the frame at `offset` of a segment whose data ends at `limit`.
pub fn read(file: &File, offset: u64, limit: u64) -> io::Result<Frame> {
    if limit.saturating_sub(offset) < HEADER as u64 {
        return Ok(Frame::Damaged);
    }
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, offset)?;
    let len = u64::from(u32::from_le_bytes(header[4..8].try_into().unwrap()));
    let crc = u32::from_le_bytes(header[8..12].try_into().unwrap());
    if header[..4] != MAGIC || len > MAX_PAYLOAD || offset + HEADER as u64 + len > limit {
        return Ok(Frame::Damaged);
    }
    let mut payload = vec![0u8; len as usize];
    file.read_exact_at(&mut payload, offset + HEADER as u64)?;
    if crc32fast::hash(&payload) != crc {
        return Ok(Frame::Damaged);
    }
    Ok(match rmp_serde::from_slice(&payload) {
        Ok(records) => Frame::Good(records, HEADER as u64 + len),
        Err(_) => Frame::Damaged,
    })
}

/// The offset of the next good frame after a damaged one at `from`, or `limit`.
pub fn next_good(file: &File, from: u64, limit: u64) -> io::Result<u64> {
    const WINDOW: usize = 64 * 1024;
    let mut buf = vec![0u8; WINDOW];
    let mut start = from + 1;
    while start < limit {
        let n = (WINDOW as u64).min(limit - start) as usize;
        file.read_exact_at(&mut buf[..n], start)?;
        for i in memchr_all(&buf[..n]) {
            let candidate = start + i as u64;
            if let Frame::Good(..) = read(file, candidate, limit)? {
                return Ok(candidate);
            }
        }
        // Overlap by the magic's length so a magic split across windows is seen.
        if n < MAGIC.len() {
            break;
        }
        start += (n - (MAGIC.len() - 1)) as u64;
    }
    Ok(limit)
}

fn memchr_all(haystack: &[u8]) -> impl Iterator<Item = usize> + '_ {
    haystack
        .windows(MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == MAGIC)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn record(n: u64) -> Record {
        json!({"n": n, "message": "x".repeat(n as usize % 50)})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn a_frame_reads_back_and_damage_is_found_past_it() {
        let mut file = tempfile::tempfile().unwrap();
        let mut frame = Vec::new();
        let mut offsets = Vec::new();
        let mut at = 0;
        for n in 0..5 {
            encode(&[record(n), record(n + 100)], &mut frame);
            offsets.push(at);
            at += frame.len() as u64;
            file.write_all(&frame).unwrap();
        }
        let Frame::Good(records, len) = read(&file, offsets[1], at).unwrap() else {
            panic!("frame 1 damaged")
        };
        assert_eq!(records, vec![record(1), record(101)]);
        assert_eq!(offsets[1] + len, offsets[2]);

        // Flip one payload byte of frame 2: its checksum fails and frame 3 is next.
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, offsets[2] + 20).unwrap();
        file.write_all_at(&[byte[0] ^ 0xff], offsets[2] + 20)
            .unwrap();
        assert!(matches!(
            read(&file, offsets[2], at).unwrap(),
            Frame::Damaged
        ));
        assert_eq!(next_good(&file, offsets[2], at).unwrap(), offsets[3]);
        // A frame cut short by the end of the data is damaged too.
        assert!(matches!(
            read(&file, offsets[4], at - 1).unwrap(),
            Frame::Damaged
        ));
        assert_eq!(next_good(&file, offsets[4], at - 1).unwrap(), at - 1);
    }
}
