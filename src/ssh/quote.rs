//! Quoting for the POSIX shell that runs a command on the far side of an SSH channel.

/// `word` as one shell word: left as it is when that is safe, else in single quotes.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn plain_words_stay_and_the_rest_is_single_quoted() {
        assert_eq!(shell_quote("/usr/local/bin/etcd"), "/usr/local/bin/etcd");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's $HOME"), r"'it'\''s $HOME'");
    }
}
