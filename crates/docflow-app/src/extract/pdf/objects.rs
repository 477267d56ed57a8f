//! Small, lenient accessors over the parsed object tree: references followed, wrong types
//! taken as absent, stream data decoded within a size limit.

use lopdf::{Dictionary, Document, Object, ObjectId, Stream};

/// References followed at most to reach an object (a longer chain is a loop).
const MAX_REFERENCE_CHAIN: usize = 16;

/// Decoded bytes one stream may yield (a decompression bomb is cut off here).
pub(super) const MAX_STREAM_BYTES: usize = 256 << 20;

/// The object itself, references followed.
pub(super) fn resolve<'a>(doc: &'a Document, mut object: &'a Object) -> Option<&'a Object> {
    for _ in 0..MAX_REFERENCE_CHAIN {
        match object {
            Object::Reference(id) => object = doc.get_object(*id).ok()?,
            _ => return Some(object),
        }
    }
    None
}

/// The object with id `id`, if there is one.
pub(super) fn object(doc: &Document, id: ObjectId) -> Option<&Object> {
    resolve(doc, doc.get_object(id).ok()?)
}

/// `dict[key]`, references followed.
pub(super) fn get<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    resolve(doc, dict.get(key).ok()?)
}

/// `dict[key]` as a dictionary (a stream's dictionary too).
pub(super) fn get_dict<'a>(
    doc: &'a Document,
    dict: &'a Dictionary,
    key: &[u8],
) -> Option<&'a Dictionary> {
    as_dict(get(doc, dict, key)?)
}

/// The dictionary of a dictionary or stream object.
pub(super) fn as_dict(object: &Object) -> Option<&Dictionary> {
    match object {
        Object::Dictionary(dict) => Some(dict),
        Object::Stream(stream) => Some(&stream.dict),
        _ => None,
    }
}

/// `dict[key]` as a name.
pub(super) fn get_name<'a>(
    doc: &'a Document,
    dict: &'a Dictionary,
    key: &[u8],
) -> Option<&'a [u8]> {
    match get(doc, dict, key)? {
        Object::Name(name) => Some(name),
        _ => None,
    }
}

/// `dict[key]` as a number.
pub(super) fn get_number(doc: &Document, dict: &Dictionary, key: &[u8]) -> Option<f64> {
    number(doc, get(doc, dict, key)?)
}

/// An integer or real, references followed.
pub(super) fn number(doc: &Document, object: &Object) -> Option<f64> {
    match resolve(doc, object)? {
        Object::Integer(n) => Some(*n as f64),
        Object::Real(n) => Some(f64::from(*n)).filter(|n| n.is_finite()),
        _ => None,
    }
}

/// `dict[key]` as an array.
pub(super) fn get_array<'a>(
    doc: &'a Document,
    dict: &'a Dictionary,
    key: &[u8],
) -> Option<&'a [Object]> {
    match get(doc, dict, key)? {
        Object::Array(items) => Some(items),
        _ => None,
    }
}

/// `dict[key]` as an array of exactly `N` numbers (`/Matrix`, `/BBox`, …).
pub(super) fn get_numbers<const N: usize>(
    doc: &Document,
    dict: &Dictionary,
    key: &[u8],
) -> Option<[f64; N]> {
    numbers(doc, get(doc, dict, key)?)
}

/// An array of exactly `N` numbers.
pub(super) fn numbers<const N: usize>(doc: &Document, object: &Object) -> Option<[f64; N]> {
    let Object::Array(items) = resolve(doc, object)? else {
        return None;
    };
    if items.len() != N {
        return None;
    }
    let mut out = [0.0; N];
    for (slot, item) in out.iter_mut().zip(items) {
        *slot = number(doc, item)?;
    }
    Some(out)
}

/// A stream's decoded data. Data that does not decode is taken as it is (as readers do for
/// a filter they lack); data past [`MAX_STREAM_BYTES`] is refused.
pub(super) fn stream_data(stream: &Stream) -> Option<Vec<u8>> {
    if stream.dict.get(b"Filter").is_err() {
        return Some(stream.content.clone());
    }
    match stream.decompressed_content_with_limit(MAX_STREAM_BYTES) {
        Ok(data) => Some(data),
        Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })) => None,
        Err(_) => Some(stream.content.clone()),
    }
}

/// `dict[key]` as a stream's decoded data.
pub(super) fn get_stream_data(doc: &Document, dict: &Dictionary, key: &[u8]) -> Option<Vec<u8>> {
    match get(doc, dict, key)? {
        Object::Stream(stream) => stream_data(stream),
        _ => None,
    }
}

/// The data of stream object `id` read straight from the file's bytes, for a stream the
/// parser lost (no `endstream`, a wrong `/Length`): from `stream` to `endstream`, `endobj`,
/// the next object or the end of the file, whichever comes first, decoded by its filters.
pub(super) fn salvage_stream(raw: &[u8], id: ObjectId) -> Option<Vec<u8>> {
    let header = format!("{} {} obj", id.0, id.1);
    let header = header.as_bytes();
    let start = raw
        .windows(header.len())
        .enumerate()
        .filter(|(at, window)| *window == header && (*at == 0 || !raw[at - 1].is_ascii_digit()))
        .map(|(at, _)| at + header.len())
        .next_back()?;
    let body = &raw[start..];
    let keyword = find(body, b"stream")?;
    if find(&body[..keyword], b"endobj").is_some() {
        return None;
    }
    let dict_bytes = &body[..keyword];
    let mut data_start = keyword + b"stream".len();
    if body.get(data_start) == Some(&b'\r') {
        data_start += 1;
    }
    if body.get(data_start) == Some(&b'\n') {
        data_start += 1;
    }
    let data = &body[data_start..];
    let end = [
        find(data, b"endstream"),
        find(data, b"endobj"),
        next_object_header(data),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(data.len());
    let data = data[..end].trim_ascii_end();
    let mut dict = Dictionary::new();
    let parsed = dictionary_only(dict_bytes).unwrap_or_default();
    for (key, value) in parsed {
        if key == b"Filter" {
            match value {
                super::content::Operand::Name(name) => dict.set("Filter", Object::Name(name)),
                super::content::Operand::Array(names) => dict.set(
                    "Filter",
                    Object::Array(
                        names
                            .into_iter()
                            .filter_map(|n| match n {
                                super::content::Operand::Name(name) => Some(Object::Name(name)),
                                _ => None,
                            })
                            .collect(),
                    ),
                ),
                _ => {}
            }
        }
    }
    stream_data(&Stream::new(dict, data.to_vec()))
}

/// The entries of the dictionary in `bytes` (an object's dictionary, before `stream`).
fn dictionary_only(bytes: &[u8]) -> Option<Vec<(Vec<u8>, super::content::Operand)>> {
    // The lexer hands out operands with the operator that follows them: add one.
    let mut with_operator = bytes.to_vec();
    with_operator.extend_from_slice(b" x");
    super::content::Lexer::new(&with_operator)
        .next()?
        .operands
        .into_iter()
        .find_map(|operand| match operand {
            super::content::Operand::Dict(entries) => Some(entries),
            _ => None,
        })
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where the next `N G obj` header starts.
fn next_object_header(data: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = find(&data[from..], b" obj") {
        let at = from + at;
        let before = &data[..at];
        let generation = before
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let rest = &before[..before.len() - generation];
        if generation > 0 && rest.ends_with(b" ") {
            let rest = &rest[..rest.len() - 1];
            let number = rest.iter().rev().take_while(|b| b.is_ascii_digit()).count();
            if number > 0 {
                return Some(rest.len() - number);
            }
        }
        from = at + 4;
    }
    None
}
