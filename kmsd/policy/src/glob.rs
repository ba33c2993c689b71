//! IAM-style wildcards: `*` matches any run of characters (also none), `?`
//! exactly one. No escapes, no character classes.

/// Whether `text` matches `pattern`. Linear-time greedy matching with one
/// backtrack point (the last `*`), so hostile patterns cannot blow up.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Case-insensitive [`glob_match`] (action names are case-insensitive).
pub(crate) fn glob_match_ignore_case(pattern: &str, text: &str) -> bool {
    glob_match(&pattern.to_lowercase(), &text.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_wildcards() {
        let yes = [
            ("", ""),
            ("abc", "abc"),
            ("*", ""),
            ("*", "anything"),
            ("a*", "a"),
            ("a*", "abc"),
            ("*c", "abc"),
            ("a*c", "abbbc"),
            ("a?c", "abc"),
            ("??", "ab"),
            ("*a*b*", "xxaxxbxx"),
            ("kms:Generate*", "kms:GenerateDataKey"),
            ("kms:*Key", "kms:CreateKey"),
            ("é?", "éü"),
        ];
        for (p, t) in yes {
            assert!(glob_match(p, t), "{p:?} should match {t:?}");
        }
        let no = [
            ("", "a"),
            ("abc", "abd"),
            ("a?c", "ac"),
            ("??", "a"),
            ("a*c", "abcd"),
            ("*a*b", "xxbxxa"),
            ("kms:Generate*", "kms:Decrypt"),
            ("ABC", "abc"),
        ];
        for (p, t) in no {
            assert!(!glob_match(p, t), "{p:?} should not match {t:?}");
        }
    }

    #[test]
    fn ignore_case() {
        assert!(glob_match_ignore_case(
            "KMS:generate*",
            "kms:GenerateDataKey"
        ));
        assert!(!glob_match_ignore_case("kms:Gen*", "kms:Decrypt"));
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(200) + "b";
        let text = "a".repeat(5000);
        assert!(!glob_match(&pattern, &text));
    }
}
