//! IAM-style wildcards: `*` matches any run of characters (also none), `?`
//! exactly one. No escapes, no character classes.

/// Whether `text` matches `pattern`. Greedy matching with one backtrack
/// point (the last `*`): O(len(pattern) × len(text)) at worst, so hostile
/// patterns cannot blow up. ASCII inputs (action names, most values) are
/// matched without allocating.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        return glob(pattern.as_bytes(), text.as_bytes(), |a, b| a == b);
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob(&p, &t, |a, b| a == b)
}

/// Case-insensitive [`glob_match`] (action names are case-insensitive).
pub(crate) fn glob_match_ignore_case(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        return glob(pattern.as_bytes(), text.as_bytes(), |a, b| {
            a.eq_ignore_ascii_case(&b)
        });
    }
    glob_match(&pattern.to_lowercase(), &text.to_lowercase())
}

trait Wild: Copy {
    const STAR: Self;
    const ONE: Self;
}

impl Wild for u8 {
    const STAR: u8 = b'*';
    const ONE: u8 = b'?';
}

impl Wild for char {
    const STAR: char = '*';
    const ONE: char = '?';
}

fn glob<T: Wild + PartialEq>(p: &[T], t: &[T], eq: impl Fn(T, T) -> bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != T::STAR && (p[pi] == T::ONE || eq(p[pi], t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == T::STAR {
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
    p[pi..].iter().all(|&c| c == T::STAR)
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
        assert!(glob_match_ignore_case("ÉT?", "étÉ"));
        assert!(!glob_match_ignore_case("ÉT", "ét?"));
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(200) + "b";
        let text = "a".repeat(5000);
        assert!(!glob_match(&pattern, &text));
    }
}
