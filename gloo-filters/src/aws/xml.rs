//! The small XML reader the AWS query APIs (EC2, STS) need: a document parsed with
//! `quick-xml` into a tree of elements (local names, namespaces dropped) with their text.
//!
//! ```
//! use gloo_filters::aws::xml::Element;
//! let doc = Element::parse(r#"<R xmlns="x"><a><item><k>1</k></item><item><k>2 &amp; 3</k></item></a></R>"#).unwrap();
//! let keys: Vec<&str> = doc.path(&["a"]).flat_map(|a| a.children("item")).filter_map(|i| i.child_text("k")).collect();
//! assert_eq!(keys, ["1", "2 & 3"]);
//! ```

use quick_xml::events::Event;
use quick_xml::Reader;

/// An element: its local name, its text (the concatenated character data directly inside
/// it) and its child elements in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name (`Reservation` for `<ec2:Reservation>`).
    pub name: String,
    /// The text directly inside the element, entities resolved, trimmed.
    pub text: String,
    /// The child elements.
    pub children: Vec<Element>,
}

/// The deepest nesting accepted, so a hostile document cannot exhaust the stack of whoever
/// walks the tree recursively.
const MAX_DEPTH: usize = 64;

impl Element {
    /// Parses a document into its root element. An error says what is wrong and where (the
    /// byte offset).
    pub fn parse(text: &str) -> Result<Element, String> {
        // Text is trimmed once an element ends, not per text event: an entity splits the
        // text around it into several events, and the spaces next to it are text.
        let mut reader = Reader::from_str(text);
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| format!("invalid XML at byte {}: {e}", reader.error_position()))?;
            match event {
                Event::Start(start) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!("XML nested deeper than {MAX_DEPTH} elements"));
                    }
                    stack.push(Element {
                        name: start.local_name().as_ref().to_string(),
                        ..Default::default()
                    });
                }
                Event::Empty(empty) => {
                    let element = Element {
                        name: empty.local_name().as_ref().to_string(),
                        ..Default::default()
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => root = root.or(Some(element)),
                    }
                }
                Event::End(_) => {
                    let Some(mut done) = stack.pop() else {
                        return Err("XML closes an element it never opened".into());
                    };
                    done.text = done.text.trim().to_string();
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => root = root.or(Some(done)),
                    }
                }
                Event::Text(text) => {
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&text.xml10_content());
                    }
                }
                Event::CData(data) => {
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&data.xml10_content());
                    }
                }
                Event::GeneralRef(reference) => {
                    let Some(current) = stack.last_mut() else {
                        continue;
                    };
                    let name = reference.xml10_content();
                    if let Some(c) = reference
                        .resolve_char_ref()
                        .map_err(|e| format!("XML character reference &{name};: {e}"))?
                    {
                        current.text.push(c);
                    } else if let Some(text) = quick_xml::escape::resolve_predefined_entity(&name) {
                        current.text.push_str(text);
                    } else {
                        return Err(format!("XML entity &{name}; is not defined"));
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !stack.is_empty() {
            return Err("XML ends inside an element".into());
        }
        root.ok_or_else(|| "not an XML document (no element)".to_string())
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The children named `name`.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`, if it has that child.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The elements reached by following `names` from this one (every child of each name at
    /// each step).
    pub fn path<'a>(&'a self, names: &'a [&'a str]) -> Box<dyn Iterator<Item = &'a Element> + 'a> {
        match names.split_first() {
            None => Box::new(std::iter::once(self)),
            Some((first, rest)) => Box::new(self.children(first).flat_map(move |c| c.path(rest))),
        }
    }

    /// The first element named `name` anywhere below this one (depth first).
    pub fn find(&self, name: &str) -> Option<&Element> {
        for child in &self.children {
            if child.name == name {
                return Some(child);
            }
            if let Some(found) = child.find(name) {
                return Some(found);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_spaces_around_entities() {
        let doc = Element::parse("<v>\n  a &amp; b \n</v>").unwrap();
        assert_eq!(doc.text, "a & b");
    }

    #[test]
    fn parses_entities_cdata_and_empty_elements() {
        let doc = Element::parse(
            "<?xml version=\"1.0\"?><a:R xmlns:a=\"u\"><x>&lt;&#65;&#x42;</x><y><![CDATA[<raw>]]></y><z/></a:R>",
        )
        .unwrap();
        assert_eq!(doc.name, "R");
        assert_eq!(doc.child_text("x"), Some("<AB"));
        assert_eq!(doc.child_text("y"), Some("<raw>"));
        assert_eq!(doc.child_text("z"), Some(""));
    }

    #[test]
    fn rejects_broken_documents() {
        assert!(Element::parse("<a><b></a>").is_err());
        assert!(Element::parse("<a>").is_err());
        assert!(Element::parse("just text").is_err());
        assert!(Element::parse("<a>&bogus;</a>").is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(Element::parse(&deep).unwrap_err().contains("deeper"));
    }
}
