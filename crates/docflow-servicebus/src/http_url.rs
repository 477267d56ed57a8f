//! URL pieces, read the same way by every server docflow runs (the handler, the broker's REST
//! API, the local host's HTTP triggers): path segments percent-decoded, query pairs
//! form-decoded.

/// The non-empty segments of `path`, percent-decoded (invalid UTF-8 replaced).
pub fn path_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// `a=1&b=x%20y` → decoded pairs, `+` as space.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (d(k), d(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_queries_are_decoded() {
        assert_eq!(path_segments("/a%20b//C/"), vec!["a b", "C"]);
        assert_eq!(
            parse_query("x=1+2&y=%2Fz&flag"),
            vec![
                ("x".to_string(), "1 2".to_string()),
                ("y".to_string(), "/z".to_string()),
                ("flag".to_string(), String::new())
            ]
        );
    }
}
