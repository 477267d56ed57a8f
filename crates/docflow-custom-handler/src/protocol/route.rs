//! Route templates of HTTP triggers (`documents/{id?}`), matched as the Functions host does:
//! segments case-insensitively, `{name}`, `{name?}`, `{name:int}` and a trailing `{*rest}`.

/// Matches `path` (below the route prefix) against a route template; returns the parameters.
pub fn match_route(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let segments = docflow_servicebus::http_url::path_segments(path);
    let mut params = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if let Some(name) = inner.strip_prefix('*') {
                params.push((
                    name.to_string(),
                    segments.get(i..).map(|s| s.join("/")).unwrap_or_default(),
                ));
                return Some(params);
            }
            let (name, constraint) = inner.split_once(':').unwrap_or((inner, ""));
            let (name, optional) = match name.strip_suffix('?') {
                Some(n) => (n, true),
                None => (name, constraint.ends_with('?')),
            };
            match segments.get(i) {
                Some(value) => {
                    if constraint.trim_end_matches('?') == "int" && value.parse::<i64>().is_err() {
                        return None;
                    }
                    params.push((name.to_string(), value.clone()));
                }
                None if optional && i == parts.len() - 1 => return Some(params),
                None => return None,
            }
        } else if segments
            .get(i)
            .is_none_or(|s| !s.eq_ignore_ascii_case(part))
        {
            return None;
        }
    }
    (segments.len() == parts.len()).then_some(params)
}
