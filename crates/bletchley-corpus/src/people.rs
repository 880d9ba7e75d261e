//! Synthetic people and their selectors: names, valid mobile numbers in
//! several national formats, and e-mail addresses.

use rand::Rng;
use rand::seq::IndexedRandom;

const GIVEN: &[&str] = &[
    "Ahmed", "Viktor", "Maria", "Omar", "Elena", "Karim", "Sergei", "Fatima", "James", "Laura",
    "Youssef", "Igor", "Nadia", "Hassan", "Sofia", "Pablo", "Anna", "Dmitri", "Leila", "Tariq",
    "Pierre", "Jan", "Olga", "Rashid", "Carlos", "Helen", "Amir", "Nina", "Boris", "Yusuf",
];
/// Surnames of planted network members: never used for background people,
/// so a background item can never link into a network by name.
const NETWORK_SURNAMES: &[&str] = &[
    "Karimi",
    "Petrov",
    "Gonzalez",
    "Haddad",
    "Sokolova",
    "Nasser",
    "Lebedev",
    "Benali",
    "Darwish",
    "Orlov",
    "Idrissi",
    "Moreau",
    "Hollis",
    "Volkov",
    "Mansour",
    "Okafor",
    "Larsen",
    "Marsh",
    "Bennett",
    "Farouk",
    "Kovac",
    "Rahimi",
    "Tahir",
    "Castillo",
    "Novak",
    "Sharif",
    "Kuznetsov",
    "Azizi",
    "Romero",
    "Hamdan",
    "Zaidi",
    "Morozov",
    "Salazar",
    "Qureshi",
    "Popescu",
    "Brennan",
    "Demir",
    "Yilmaz",
    "Aziz",
    "Fontaine",
];
const BACKGROUND_SURNAMES: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Roberts", "Walker",
    "Wright", "Hughes", "Green", "Hall", "Wood", "Clarke", "Jackson", "White", "Harris", "Martin",
    "Cooper", "Ward", "Morris", "King", "Baker", "Turner",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.net",
    "example.org",
    "mail.example.co.uk",
];

/// One synthetic person.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Person {
    /// Given name and surname.
    pub name: String,
    /// E.164 mobile number.
    pub phone: String,
    /// E-mail address, lower case.
    pub email: String,
}

impl Person {
    /// A network member: surname from the reserved list.
    /// Given name and surname are chosen by serial so that no two members
    /// of any corpus share a full name (a shared name would link them).
    pub fn member(rng: &mut impl Rng, serial: usize) -> Person {
        let surname = NETWORK_SURNAMES[serial % NETWORK_SURNAMES.len()];
        let given = GIVEN[(serial / NETWORK_SURNAMES.len()) % GIVEN.len()];
        Self::make(rng, given, surname, serial)
    }

    /// A background person, never linked to a network.
    pub fn background(rng: &mut impl Rng, serial: usize) -> Person {
        let surname = *BACKGROUND_SURNAMES.choose(rng).unwrap_or(&"Smith");
        let given = *GIVEN.choose(rng).unwrap_or(&"Ahmed");
        Self::make(rng, given, surname, serial)
    }

    fn make(rng: &mut impl Rng, given: &str, surname: &str, serial: usize) -> Person {
        let domain = *DOMAINS.choose(rng).unwrap_or(&"example.com");
        Person {
            name: format!("{given} {surname}"),
            phone: mobile(rng),
            email: format!(
                "{}.{}{serial}@{domain}",
                given.to_lowercase(),
                surname.to_lowercase()
            ),
        }
    }

    /// The selector terms the index gives this person's phone and e-mail.
    pub fn terms(&self) -> [String; 2] {
        [
            format!("phone:{}", self.phone),
            format!("email:{}", self.email),
        ]
    }
}

/// A valid mobile number (E.164) in one of five national plans.
fn mobile(rng: &mut impl Rng) -> String {
    let digits = |rng: &mut dyn rand::RngCore, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect()
    };
    // Drawn until libphonenumber's metadata accepts it, so every number in
    // a corpus is one the platform's extractor recognises. Judged by the
    // `phonenumber` port on purpose: the extractor uses `rlibphonenumber`,
    // so the answer key does not come from the code it checks.
    loop {
        let n = match rng.random_range(0..5) {
            0 => format!("+447{}", digits(rng, 9)),
            1 => format!("+336{}", digits(rng, 8)),
            2 => format!("+4915{}", digits(rng, 9)),
            3 => format!("+346{}", digits(rng, 8)),
            _ => format!("+316{}", digits(rng, 8)),
        };
        if phonenumber::parse(None, &n).is_ok_and(|p| phonenumber::is_valid(&p)) {
            return n;
        }
    }
}

/// The number as people write it: international with spaces, the `00`
/// prefix, or compact — all normalise to the same E.164 term.
pub fn written(rng: &mut impl Rng, e164: &str) -> String {
    let (cc_len, rest) = match &e164[1..3] {
        "44" | "33" | "49" | "34" | "31" => (2, &e164[3..]),
        _ => (0, &e164[1..]),
    };
    let cc = &e164[1..1 + cc_len];
    match rng.random_range(0..3) {
        0 => {
            let (a, b) = rest.split_at(rest.len().min(4));
            format!("+{cc} {a} {b}")
        }
        1 => format!("00{cc} {rest}"),
        _ => e164.to_owned(),
    }
}
