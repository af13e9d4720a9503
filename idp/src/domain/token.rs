//! The random values handed out by [`crate::crypto::random_token`]: session
//! and browser cookies, pending sign-ins, links sent by mail. Their shape is
//! checked once, here, before anything is looked up with them.

use std::fmt;

/// 256 random bits as 43 base64url characters (no padding). `Debug` never
/// shows the value: most tokens are bearer secrets.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    /// The length of every token: 32 bytes in base64url without padding.
    pub const LEN: usize = 43;

    /// The token, if `input` has the shape of one; anything else is refused
    /// unseen (never sent to a store).
    pub fn parse(input: &str) -> Option<Self> {
        let well_formed = input.len() == Self::LEN
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for Token {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::Token;
    use crate::crypto::random_token;

    #[test]
    fn random_tokens_parse() {
        let t = random_token();
        assert_eq!(Token::parse(&t).map(Token::into_string), Some(t));
    }

    #[test]
    fn other_shapes_are_refused() {
        let ok = "a".repeat(43);
        assert!(Token::parse(&ok).is_some());
        assert!(Token::parse(&"a".repeat(42)).is_none());
        assert!(Token::parse(&"a".repeat(44)).is_none());
        assert!(Token::parse("").is_none());
        for bad in ['=', '+', '/', '.', '~', ' ', 'é'] {
            let s: String = std::iter::once(bad).chain("a".repeat(42).chars()).collect();
            assert!(Token::parse(&s).is_none(), "{s:?}");
        }
        assert_eq!(format!("{:?}", Token::parse(&ok)), "Some(Token(..))");
    }
}
