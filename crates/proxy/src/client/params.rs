//! A client's startup parameters, applied to whichever server connection it gets.

/// `(name, value)` pairs the client asked for, with `options=-c a=b --c=d` unfolded.
pub fn requested(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in params {
        if k == "options" {
            out.extend(parse_options(v));
        } else {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

/// libpq's `options`: `-c name=value` or `--name=value`, whitespace separated, `\` escapes.
fn parse_options(options: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
        } else if let Some(s) = w.strip_prefix("--") {
            Some(s.to_owned())
        } else {
            w.strip_prefix("-c").map(str::to_owned)
        };
        if let Some((k, v)) = setting.as_deref().and_then(|s| s.split_once('=')) {
            out.push((k.replace('-', "_"), v.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_options() {
        let p = requested(&[
            ("application_name".into(), "app".into()),
            (
                "options".into(),
                "-c search_path=a,b --statement-timeout=5s -cwork_mem=4MB -c x\\ y=1".into(),
            ),
        ]);
        assert_eq!(
            p,
            vec![
                ("application_name".into(), "app".into()),
                ("search_path".into(), "a,b".into()),
                ("statement_timeout".into(), "5s".into()),
                ("work_mem".into(), "4MB".into()),
                ("x y".into(), "1".into()),
            ]
        );
    }
}
