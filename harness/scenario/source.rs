//! Maps a key path such as `model[1].inputs.x.shape` back to its line in the scenario file, so that
//! errors found after parsing (a shape that contradicts the model, say) still point at the right line.

use toml_edit::{Document, Item, Table, Value};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A key path, printed the way users write it: `model[1].inputs.x.shape`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub(crate) fn key(&self, k: &str) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        KeyPath(v)
    }
    pub(crate) fn index(&self, i: usize) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        KeyPath(v)
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The scenario text with a span-preserving parse of it.
pub(crate) struct SourceMap {
    text: String,
    doc: Option<Document<String>>,
}

impl SourceMap {
    pub(crate) fn new(text: &str) -> SourceMap {
        SourceMap {
            text: text.to_string(),
            doc: Document::parse(text.to_string()).ok(),
        }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_of_offset(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The line where the deepest existing prefix of `path` is written.
    pub(crate) fn line_of(&self, path: &KeyPath) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut best = None;
        let mut cur = Node::Table(doc.as_table());
        for seg in &path.0 {
            let (span, next) = match (cur, seg) {
                (Node::Table(t), Seg::Key(k)) => {
                    let Some((key, item)) = t.get_key_value(k) else {
                        break;
                    };
                    (key.span().or_else(|| item.span()), Node::from_item(item))
                }
                (Node::Inline(t), Seg::Key(k)) => {
                    let Some((key, value)) = t.get_key_value(k) else {
                        break;
                    };
                    (key.span().or_else(|| value.span()), Node::from_item(value))
                }
                (Node::Tables(a), Seg::Index(i)) => {
                    let Some(t) = a.get(*i) else { break };
                    (t.span(), Node::Table(t))
                }
                (Node::Array(a), Seg::Index(i)) => {
                    let Some(v) = a.get(*i) else { break };
                    (v.span(), Node::from_value(v))
                }
                _ => break,
            };
            if let Some(s) = span {
                best = Some(self.line_of_offset(s.start));
            }
            cur = next;
        }
        best
    }
}

impl SourceMap {
    /// The key path of the deepest value whose text contains byte `offset`, e.g. `sweep.workers`
    /// for an error pointing inside `workers = "two"`.
    pub(crate) fn key_at(&self, offset: usize) -> Option<KeyPath> {
        let doc = self.doc.as_ref()?;
        let mut best = None;
        walk(
            Node::Table(doc.as_table()),
            &KeyPath::default(),
            offset,
            &mut best,
        );
        best
    }
}

fn contains(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

fn walk(node: Node, path: &KeyPath, offset: usize, best: &mut Option<KeyPath>) {
    let mut visit = |child: Node, span: Option<std::ops::Range<usize>>, p: KeyPath| {
        if contains(span, offset) {
            *best = Some(p.clone());
        }
        walk(child, &p, offset, best);
    };
    match node {
        Node::Table(t) => {
            for (k, item) in t.iter() {
                visit(Node::from_item(item), item.span(), path.key(k));
            }
        }
        Node::Inline(t) => {
            for (k, v) in t.iter() {
                visit(Node::from_value(v), v.span(), path.key(k));
            }
        }
        Node::Tables(a) => {
            for (i, t) in a.iter().enumerate() {
                visit(Node::Table(t), None, path.index(i));
            }
        }
        Node::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                visit(Node::from_value(v), v.span(), path.index(i));
            }
        }
        Node::Leaf => {}
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Inline(&'a toml_edit::InlineTable),
    Tables(&'a toml_edit::ArrayOfTables),
    Array(&'a toml_edit::Array),
    Leaf,
}

impl<'a> Node<'a> {
    fn from_item(item: &'a Item) -> Node<'a> {
        match item {
            Item::Table(t) => Node::Table(t),
            Item::ArrayOfTables(a) => Node::Tables(a),
            Item::Value(v) => Node::from_value(v),
            Item::None => Node::Leaf,
        }
    }
    fn from_value(v: &'a Value) -> Node<'a> {
        match v {
            Value::InlineTable(t) => Node::Inline(t),
            Value::Array(a) => Node::Array(a),
            _ => Node::Leaf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_of_nested_keys() {
        let text = "name = \"x\"\n\n[[model]]\nname = \"a\"\n\n[[model]]\nname = \"b\"\ninputs.x = { shape = [1, 2] }\n[sweep]\nworkers = [1, 2]\n";
        let map = SourceMap::new(text);
        let model1 = KeyPath::default().key("model").index(1);
        assert_eq!(map.line_of(&model1.key("name")), Some(7));
        assert_eq!(
            map.line_of(&model1.key("inputs").key("x").key("shape")),
            Some(8)
        );
        assert_eq!(
            map.line_of(&KeyPath::default().key("sweep").key("workers")),
            Some(10)
        );
        // A missing key falls back to the deepest existing prefix.
        assert_eq!(map.line_of(&model1.key("path")), Some(6));
        assert_eq!(
            model1.key("inputs").key("x").to_string(),
            "model[1].inputs.x"
        );
    }
}
