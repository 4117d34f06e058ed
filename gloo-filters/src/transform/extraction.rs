//! Compiled extractors: envoy-gloo's `Extractor` (`inja_transformer.cc`).

use regex::{Captures, Regex};

use super::config::{Extraction, ExtractionMode, ExtractionSource};
use super::error::ConfigError;
use super::head::{Head, Name};

#[derive(Debug)]
enum Source {
    Header(Name),
    Body,
}

/// A validated [`Extraction`].
#[derive(Debug)]
pub(crate) struct Extractor {
    source: Source,
    /// The regex as written: `SINGLE_REPLACE` searches with it, `REPLACE_ALL` replaces with it.
    regex: Regex,
    /// `^(?:regex)$`: `EXTRACT` needs the whole source to match (`std::regex_match`).
    anchored: Regex,
    group: usize,
    replacement: Vec<Piece>,
    mode: ExtractionMode,
}

/// A part of an ECMAScript replacement string (`std::regex_replace`'s default format).
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
    Prefix,
    Suffix,
}

impl Extractor {
    /// Validates like envoy-gloo's `Extractor` constructor plus Gloo's own checks (an
    /// `EXTRACT` extractor must not have a replacement text). Field names in errors are
    /// relative to the extractor.
    pub(crate) fn compile(e: &Extraction) -> Result<Self, ConfigError> {
        let source = match &e.source {
            ExtractionSource::Header(name) => {
                Source::Header(Name::parse(name).map_err(|m| ConfigError::new("header", m))?)
            }
            ExtractionSource::Body => Source::Body,
        };
        if e.regex.is_empty() {
            return Err(ConfigError::new(
                "regex",
                "required (use '.*' to take the whole source)",
            ));
        }
        let regex = Regex::new(&e.regex).map_err(|err| ConfigError::new("regex", err))?;
        let anchored = Regex::new(&format!("^(?:{})$", e.regex))
            .map_err(|err| ConfigError::new("regex", err))?;
        let groups = regex.captures_len() - 1;
        let group = e.subgroup as usize;
        if group > groups {
            return Err(ConfigError::new(
                "subgroup",
                format_args!("group {group} requested for regex with only {groups} sub groups"),
            ));
        }
        match (e.mode, &e.replacement_text) {
            (ExtractionMode::Extract, Some(_)) => {
                return Err(ConfigError::new(
                    "replacement_text",
                    "must not be set in EXTRACT mode",
                ))
            }
            (ExtractionMode::SingleReplace | ExtractionMode::ReplaceAll, None) => {
                return Err(ConfigError::new(
                    "replacement_text",
                    format_args!("required in {} mode", e.mode),
                ))
            }
            (ExtractionMode::ReplaceAll, _) if group != 0 => {
                return Err(ConfigError::new(
                    "subgroup",
                    "must not be set in REPLACE_ALL mode",
                ))
            }
            _ => {}
        }
        let replacement = match (&e.replacement_text, e.mode) {
            (Some(text), ExtractionMode::ReplaceAll) => parse_replacement(text, groups),
            (Some(text), _) => vec![Piece::Literal(text.clone())],
            (None, _) => Vec::new(),
        };
        Ok(Self {
            source,
            regex,
            anchored,
            group,
            replacement,
            mode: e.mode,
        })
    }

    pub(crate) fn reads_body(&self) -> bool {
        matches!(self.source, Source::Body)
    }

    /// The extracted (or replaced) value. An absent header gives the empty string in every
    /// mode, as in envoy-gloo.
    pub(crate) fn extract(&self, head: &Head, body: &str) -> String {
        let header;
        let value = match &self.source {
            Source::Body => body,
            Source::Header(name) => match head.get(name) {
                Some(v) => {
                    header = v;
                    &header
                }
                None => return String::new(),
            },
        };
        match self.mode {
            ExtractionMode::Extract => self
                .anchored
                .captures(value)
                .and_then(|c| c.get(self.group))
                .map_or_else(String::new, |m| m.as_str().to_owned()),
            ExtractionMode::SingleReplace => self.single_replace(value),
            ExtractionMode::ReplaceAll => self.replace_all(value),
        }
    }

    /// `replaceIndividualValue`: search, and only if the first match spans the whole source,
    /// replace the subgroup.
    fn single_replace(&self, value: &str) -> String {
        let Some(caps) = self.regex.captures(value) else {
            return value.to_owned();
        };
        let whole = caps.get(0).map_or(0..0, |m| m.range());
        if whole != (0..value.len()) {
            return value.to_owned();
        }
        let Some(group) = caps.get(self.group) else {
            // A group that did not participate: std::regex gives an empty sub_match at the end
            // of the input, so the replacement text is appended.
            let mut out = value.to_owned();
            out.push_str(&self.literal_replacement());
            return out;
        };
        let mut out = String::with_capacity(value.len() + self.literal_replacement().len());
        out.push_str(&value[..group.start()]);
        out.push_str(&self.literal_replacement());
        out.push_str(&value[group.end()..]);
        out
    }

    fn literal_replacement(&self) -> String {
        self.replacement
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.as_str(),
                _ => "",
            })
            .collect()
    }

    /// `std::regex_replace(input, re, replacement, match_not_null)`: every non-empty match is
    /// replaced; the text between matches is kept.
    fn replace_all(&self, value: &str) -> String {
        let mut out = String::with_capacity(value.len());
        let mut last = 0;
        for caps in self.regex.captures_iter(value) {
            let Some(m) = caps.get(0) else { continue };
            if m.is_empty() {
                continue;
            }
            out.push_str(&value[last..m.start()]);
            self.expand(&caps, value, &mut out);
            last = m.end();
        }
        out.push_str(&value[last..]);
        out
    }

    fn expand(&self, caps: &Captures<'_>, value: &str, out: &mut String) {
        let whole = caps.get(0).map_or(0..0, |m| m.range());
        for piece in &self.replacement {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Group(g) => out.push_str(caps.get(*g).map_or("", |m| m.as_str())),
                Piece::Prefix => out.push_str(&value[..whole.start]),
                Piece::Suffix => out.push_str(&value[whole.end..]),
            }
        }
    }
}

/// Parses an ECMAScript replacement format: `$&` (the match), `$1`..`$99` (groups that exist;
/// two digits only if that group exists), `` $` `` / `$'` (text before / after the match),
/// `$$` (a dollar); any other `$` is literal.
fn parse_replacement(text: &str, groups: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let Some(rest) = text.get(i..) else { break };
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        if c != '$' || i + 1 >= text.len() {
            literal.push(c);
            i += c.len_utf8();
            continue;
        }
        let next = bytes[i + 1];
        let piece = match next {
            b'$' => {
                literal.push('$');
                i += 2;
                continue;
            }
            b'&' => Some((Piece::Group(0), 2)),
            b'`' => Some((Piece::Prefix, 2)),
            b'\'' => Some((Piece::Suffix, 2)),
            b'0'..=b'9' => {
                let one = usize::from(next - b'0');
                let two = bytes
                    .get(i + 2)
                    .filter(|b| b.is_ascii_digit())
                    .map(|b| one * 10 + usize::from(b - b'0'));
                match two {
                    Some(n) if n >= 1 && n <= groups => Some((Piece::Group(n), 3)),
                    _ if one >= 1 && one <= groups => Some((Piece::Group(one), 2)),
                    _ => None,
                }
            }
            _ => None,
        };
        match piece {
            Some((piece, len)) => {
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
                i += len;
            }
            None => {
                literal.push('$');
                i += 1;
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_format() {
        assert_eq!(
            parse_replacement("a$1b$$c$&$9$12", 12),
            vec![
                Piece::Literal("a".into()),
                Piece::Group(1),
                Piece::Literal("b$c".into()),
                Piece::Group(0),
                Piece::Group(9),
                Piece::Group(12),
            ]
        );
        // `$12` with one group is group 1 followed by "2"; `$5` without that group is literal.
        assert_eq!(
            parse_replacement("$12$5$", 1),
            vec![Piece::Group(1), Piece::Literal("2$5$".into())]
        );
    }
}
