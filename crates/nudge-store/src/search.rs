//! Contact search, one rule for both backends (pure): the text kept for each contact
//! ([`text`], in the `contacts.search` column, written with every change of the
//! contact) and what a search term looks for in it ([`needles`]). A contact matches a
//! term when its text contains one of the term's needles, exactly; the backends only
//! find those contacts fast:
//!
//! - SQLite: an FTS5 table with the `trigram` tokenizer (`case_sensitive 1`: the text
//!   and the needles are already lower-cased here) over the column, kept by triggers;
//!   a needle is a phrase (`MATCH '"needle"'`), which matches exactly where the text
//!   contains it.
//! - PostgreSQL: a `pg_trgm` GIN index on the column; a needle is `LIKE '%needle%'`.
//!
//! The rule for a term (trimmed, lower-cased, control characters dropped):
//! - **3 characters or more**: anywhere in the contact's e-mail address, user id, phone
//!   number or one of its names (`name`, `first_name last_name`, `firstName
//!   lastName`). A term written like a phone number (digits with spaces, dashes, dots,
//!   brackets, a leading `+`) also matches the phone as stored (`+` and digits).
//! - **1 or 2 characters**: the start of a word of those (a word is a run of letters
//!   and digits: `ad` finds `Ada Lovelace` and `adam@x.io`, not `Ladd`). A trigram
//!   index cannot look for fewer than three characters, so the text ends with each
//!   word's first two characters behind markers no term contains, which makes a
//!   short term a three-character needle.

use nudge_core::Contact;

/// Precedes each word start in the text; dropped from terms.
const MARK: char = '\u{1}';

/// Terms of this many characters or more are looked for anywhere; shorter ones at the
/// start of words.
pub const SUBSTRING_MIN_CHARS: usize = 3;

/// Lower-cased, control characters (line breaks, the marker) as spaces.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .to_lowercase()
}

/// The text a contact is searched in: its e-mail address, user id, phone and names,
/// lower-cased, one per line (so no term spans two of them), then the first two
/// characters of each of their words, each behind two markers.
pub fn text(contact: &Contact) -> String {
    let mut fields: Vec<String> = Vec::new();
    let values = [contact.email.clone(), contact.user_id.clone(), contact.phone.clone()];
    for value in values.into_iter().flatten().chain(contact.names()) {
        let value = clean(value.trim());
        if !value.is_empty() && !fields.contains(&value) {
            fields.push(value);
        }
    }
    let mut starts: Vec<String> = Vec::new();
    for field in &fields {
        for word in field.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let start: String = word.chars().take(2).collect();
            if !starts.contains(&start) {
                starts.push(start);
            }
        }
    }
    let mut out = fields.join("\n");
    out.push('\n');
    for start in starts {
        out.push(MARK);
        out.push(MARK);
        out.push_str(&start);
    }
    out
}

/// What a search term looks for in [`text`]: a contact matches when its text contains
/// one of these. `None` for a blank term (no search).
pub fn needles(term: &str) -> Option<Vec<String>> {
    let term = clean(term).trim().to_owned();
    let chars = term.chars().count();
    if chars == 0 {
        return None;
    }
    if chars < SUBSTRING_MIN_CHARS {
        // 1 character: the marker pair and it; 2: one marker and them.
        let marks = SUBSTRING_MIN_CHARS - chars;
        return Some(vec![format!("{}{term}", MARK.to_string().repeat(marks))]);
    }
    let mut out = vec![term.clone()];
    if let Some(phone) = as_phone(&term)
        && phone != term
    {
        out.push(phone);
    }
    Some(out)
}

/// A term written like a phone number (digits, spaces, `-`, `.`, brackets, a leading
/// `+`, at least 3 digits) as the phone is stored: `+` and digits.
fn as_phone(term: &str) -> Option<String> {
    let plus = term.starts_with('+');
    let rest = term.strip_prefix('+').unwrap_or(term);
    if !rest.chars().all(|c| c.is_ascii_digit() || " -.()".contains(c)) {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < SUBSTRING_MIN_CHARS {
        return None;
    }
    Some(if plus { format!("+{digits}") } else { digits })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contact(user_id: Option<&str>, traits: serde_json::Value) -> Contact {
        let mut c = Contact::new(1, 0);
        c.user_id = user_id.map(str::to_owned);
        c.apply_traits(traits.as_object().unwrap());
        c
    }

    /// Whether `term` finds the contact, as both backends decide it.
    fn finds(c: &Contact, term: &str) -> bool {
        let text = text(c);
        needles(term).unwrap().iter().any(|n| text.contains(n.as_str()))
    }

    #[test]
    fn the_text_holds_addresses_ids_and_names_lower_cased_one_per_line() {
        let c = contact(
            Some("U-42"),
            json!({"email": "Ada@Example.com", "phone": "+44 20 7946 0000", "first_name": "Ada", "last_name": "Lovelace", "plan": "pro"}),
        );
        assert_eq!(
            text(&c),
            "ada@example.com\nu-42\n+442079460000\nada lovelace\n\
             \u{1}\u{1}ad\u{1}\u{1}ex\u{1}\u{1}co\u{1}\u{1}u\u{1}\u{1}42\u{1}\u{1}44\u{1}\u{1}lo"
        );
        assert_eq!(
            text(&Contact::new(2, 0)),
            "\n",
            "a contact without any is searched in nothing"
        );
        let same = contact(Some("ada@example.com"), json!({"email": "ada@example.com"}));
        assert_eq!(
            text(&same),
            "ada@example.com\n\u{1}\u{1}ad\u{1}\u{1}ex\u{1}\u{1}co",
            "each once"
        );
        let odd = contact(None, json!({"name": "Ada\n\u{1}\u{1}zz"}));
        assert_eq!(
            text(&odd),
            "ada   zz\n\u{1}\u{1}ad\u{1}\u{1}zz",
            "control characters in a value (a line break, the marker) are spaces"
        );
    }

    #[test]
    fn a_term_of_three_characters_or_more_is_found_anywhere_in_one_field() {
        let c = contact(
            Some("user-4242"),
            json!({"email": "ada.l@example.com", "phone": "+1 (555) 010-0199", "name": "Ada Lovelace"}),
        );
        for hit in [
            "ada",
            "LOVE",
            "a lov",
            " Ada Lovelace ",
            "l@ex",
            "ser-42",
            "5550100",
            "555-0100",
            "(555) 010",
            "+1 555",
            "xample.co",
        ] {
            assert!(finds(&c, hit), "{hit:?} finds the contact");
        }
        for miss in [
            "lovelace ada",
            "com\nuser",
            "com user",
            "555 0200",
            "bob",
            "ada@example",
        ] {
            assert!(!finds(&c, miss), "{miss:?} does not");
        }
        assert_eq!(needles("555-0100").unwrap(), ["555-0100", "5550100"]);
        assert_eq!(needles("abc").unwrap(), ["abc"]);
        assert_eq!(needles(" \t\n"), None);
        assert_eq!(
            needles("a\u{1}bc").unwrap(),
            ["a bc"],
            "the marker never reaches a needle"
        );
    }

    #[test]
    fn a_shorter_term_is_found_at_the_start_of_a_word() {
        let c = contact(Some("x7"), json!({"email": "adam@mail.io", "name": "Íris Ladd"}));
        for hit in ["a", "AD", "m", "ma", "io", "í", "ír", "la", "x", "x7"] {
            assert!(finds(&c, hit), "{hit:?} finds the contact");
        }
        for miss in ["d", "dd", "am", "ri", "@m", "o", "z", "7"] {
            assert!(!finds(&c, miss), "{miss:?} does not");
        }
        assert_eq!(needles("ab").unwrap(), ["\u{1}ab"]);
        assert_eq!(needles("a").unwrap(), ["\u{1}\u{1}a"]);
    }

    #[test]
    fn names_in_other_scripts_are_found() {
        let c = contact(None, json!({"first_name": "مریم", "last_name": "رضایی"}));
        assert!(finds(&c, "مریم رض"));
        assert!(finds(&c, "رض"));
        let c = contact(None, json!({"name": "ÖZGE Şahin"}));
        assert!(finds(&c, "özge"));
        assert!(finds(&c, "ŞAH"));
    }
}
