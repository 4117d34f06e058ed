//! What the two HTTP/1 head parsers share: the server loop's (requests) and the upstream
//! client's (responses).

/// How many fields' places a parser keeps on the stack; a head with more puts them on the
/// heap. Zeroing room for the most fields a head may have (100 or more) cost more than the
/// rest of the parse.
const FIELDS_ON_STACK: usize = 16;

/// Room for the places of `count` fields: in `inline` when they fit, else in `heap`.
pub(crate) fn field_room<'a, T: Copy + Default>(
    inline: &'a mut [T; FIELDS_ON_STACK],
    heap: &'a mut Vec<T>,
    count: usize,
) -> &'a mut [T] {
    if count <= inline.len() {
        &mut inline[..count]
    } else {
        heap.resize(count, T::default());
        &mut heap[..]
    }
}

/// Whether a `Transfer-Encoding` value ends with `chunked` (the body is chunked then).
pub(crate) fn ends_chunked(value: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .next_back()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Room on the stack for [`field_room`].
pub(crate) fn inline_room<T: Copy + Default>() -> [T; FIELDS_ON_STACK] {
    [T::default(); FIELDS_ON_STACK]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_fields_stay_inline_and_more_go_to_the_heap() {
        let mut inline = inline_room::<u32>();
        let mut heap = Vec::new();
        assert_eq!(field_room(&mut inline, &mut heap, 3).len(), 3);
        assert!(heap.is_empty());
        assert_eq!(field_room(&mut inline, &mut heap, 40).len(), 40);
        assert_eq!(heap.len(), 40);
    }
}
