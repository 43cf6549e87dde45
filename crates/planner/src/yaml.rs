//! A YAML tree that remembers where every node stands, so that problems found
//! after deserialisation can still name their line and column.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// `plain` is false for quoted and block scalars.
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Alias,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    /// 1-based line and column.
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Node {
    pub(crate) fn at(&self) -> (usize, usize) {
        (self.line, self.column)
    }

    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and the value node of `key` in a mapping.
    pub(crate) fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    pub(crate) fn index(&self, i: usize) -> Option<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.get(i),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// A plain (unquoted) scalar made only of digits: YAML reads it as a number.
    pub(crate) fn is_unquoted_number(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, plain: true }
            if !value.is_empty() && value.trim_start_matches(['+', '-']).bytes().all(|b| b.is_ascii_digit() || b == b'_'))
    }
}

/// A syntax error with its 1-based position.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// Parses the first document; `Ok(None)` for an empty file.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| SyntaxError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_owned(),
    })?;
    Ok(builder.root)
}

#[derive(Default)]
struct Builder {
    /// Open collections; a mapping's entries are pushed as flat key, value nodes.
    stack: Vec<(Node, Vec<Node>)>,
    root: Option<Node>,
}

impl Builder {
    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some((_, children)) => children.push(node),
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let (line, column) = (mark.line(), mark.col() + 1);
        let open = |kind| Node { kind, line, column };
        match ev {
            Event::Scalar(value, style, _, _) => {
                let plain = style == TScalarStyle::Plain;
                self.push_node(open(Kind::Scalar { value, plain }));
            }
            Event::Alias(_) => self.push_node(open(Kind::Alias)),
            Event::SequenceStart(..) => self.stack.push((open(Kind::Seq(Vec::new())), Vec::new())),
            Event::MappingStart(..) => self.stack.push((open(Kind::Map(Vec::new())), Vec::new())),
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((mut node, children)) = self.stack.pop() else {
                    return;
                };
                node.kind = match node.kind {
                    Kind::Seq(_) => Kind::Seq(children),
                    _ => {
                        let mut entries = Vec::with_capacity(children.len() / 2);
                        let mut it = children.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            entries.push((k, v));
                        }
                        Kind::Map(entries)
                    }
                };
                self.push_node(node);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_quoting_is_seen() {
        let root = parse("a: 1\nlist:\n  - id: \"0123\"\n  - id: 0123\n").unwrap().unwrap();
        let a = root.get("a").unwrap();
        assert_eq!((a.line, a.column), (1, 4));
        let first = root.get("list").unwrap().index(0).unwrap().get("id").unwrap();
        assert_eq!((first.line, first.column, first.is_unquoted_number()), (3, 9, false));
        let second = root.get("list").unwrap().index(1).unwrap().get("id").unwrap();
        assert_eq!((second.line, second.column, second.is_unquoted_number()), (4, 9, true));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line >= 1, "{err:?}");
    }
}
