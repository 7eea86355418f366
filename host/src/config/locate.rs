//! Maps every key of a YAML file to its line and column. serde keeps no positions once a
//! value is built, and the errors we care about most (a dangling input, a cycle, a missing
//! variable) are found after deserializing, so we index positions in a separate pass over
//! the parser's events.

use super::error::{KeyPath, Segment};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Path → (line, column), both 1-based. A mapping entry points at its key; a sequence
/// item at the item.
pub type Positions = HashMap<KeyPath, (usize, usize)>;

enum Frame {
    Map {
        path: KeyPath,
        pending_key: Option<String>,
    },
    Seq {
        path: KeyPath,
        next: usize,
    },
}

#[derive(Default)]
struct Indexer {
    stack: Vec<Frame>,
    positions: Positions,
    root_seen: bool,
}

impl Indexer {
    /// Where the next value goes, and records the position of a sequence item.
    fn place_value(&mut self, mark: Marker) -> Option<KeyPath> {
        match self.stack.last_mut() {
            None => {
                if self.root_seen {
                    return None;
                }
                self.root_seen = true;
                Some(KeyPath::default())
            }
            Some(Frame::Map { path, pending_key }) => pending_key.take().map(|k| path.key(&k)),
            Some(Frame::Seq { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                self.positions
                    .insert(p.clone(), (mark.line(), mark.col() + 1));
                Some(p)
            }
        }
    }

    /// Returns true when the scalar was consumed as a mapping key.
    fn take_key(&mut self, value: &str, mark: Marker) -> bool {
        if let Some(Frame::Map { path, pending_key }) = self.stack.last_mut() {
            if pending_key.is_none() {
                self.positions
                    .insert(path.key(value), (mark.line(), mark.col() + 1));
                *pending_key = Some(value.to_owned());
                return true;
            }
        }
        false
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) if !self.take_key(&value, mark) => {
                self.place_value(mark);
            }
            Event::Alias(_) if !self.take_key("", mark) => {
                self.place_value(mark);
            }
            Event::MappingStart(..) => {
                // A mapping used as a key is not something a pipeline file has; give it a
                // placeholder so the rest of the file still indexes.
                if self.take_key("<complex key>", mark) {
                    self.stack.push(Frame::Map {
                        path: KeyPath(vec![Segment::Key("<complex key>".into())]),
                        pending_key: None,
                    });
                    return;
                }
                let path = self.place_value(mark).unwrap_or_default();
                self.positions
                    .entry(path.clone())
                    .or_insert((mark.line(), mark.col() + 1));
                self.stack.push(Frame::Map {
                    path,
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.place_value(mark).unwrap_or_default();
                self.positions
                    .entry(path.clone())
                    .or_insert((mark.line(), mark.col() + 1));
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// Positions of every key in `source`; empty when the file does not parse (the YAML
/// parser's own error then says where).
pub fn index(source: &str) -> Positions {
    let mut indexer = Indexer::default();
    let mut parser = Parser::new_from_str(source);
    let _ = parser.load(&mut indexer, false);
    indexer.positions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_items_have_their_positions() {
        let src = "sources:\n  demo:\n    type: demo\ntransforms:\n  t:\n    inputs: [demo, other]\n    config:\n      - a: 1\n";
        let p = index(src);
        assert_eq!(p[&KeyPath::parse(&["sources"])], (1, 1));
        assert_eq!(p[&KeyPath::parse(&["sources", "demo", "type"])], (3, 5));
        assert_eq!(
            p[&KeyPath::parse(&["transforms", "t", "inputs"]).index(1)],
            (6, 20)
        );
        assert_eq!(
            p[&KeyPath::parse(&["transforms", "t", "config"])
                .index(0)
                .key("a")],
            (8, 9)
        );
    }
}
