//! Passphrases from the environment or, on a terminal, a prompt.

use std::io::IsTerminal;

use bletchley_store::{KeyName, Unlock};
use zeroize::Zeroizing;

/// `BLETCHLEY_PASSPHRASE_<NAME>`, then `BLETCHLEY_PASSPHRASE`, then a prompt.
pub struct EnvUnlock;

fn var_name(key: &KeyName) -> String {
    let suffix = match key {
        KeyName::Platform => "PLATFORM".to_owned(),
        KeyName::Oversight => "OVERSIGHT".to_owned(),
        KeyName::Agency(a) => a.to_ascii_uppercase().replace('-', "_"),
    };
    format!("BLETCHLEY_PASSPHRASE_{suffix}")
}

impl Unlock for EnvUnlock {
    fn passphrase(&self, key: &KeyName) -> Result<Zeroizing<String>, String> {
        let specific = var_name(key);
        for v in [specific.as_str(), "BLETCHLEY_PASSPHRASE"] {
            if let Ok(p) = std::env::var(v)
                && !p.is_empty()
            {
                return Ok(Zeroizing::new(p));
            }
        }
        if std::io::stdin().is_terminal() {
            return rpassword::prompt_password(format!("passphrase for the {key} key: "))
                .map(Zeroizing::new)
                .map_err(|e| format!("could not read the passphrase: {e}"));
        }
        Err(format!(
            "no passphrase for the {key} key: set {specific} or BLETCHLEY_PASSPHRASE, or run on a terminal"
        ))
    }
}

/// A new login password: `BLETCHLEY_NEW_PASSWORD`, or asked twice on a
/// terminal.
pub fn new_password(name: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("BLETCHLEY_NEW_PASSWORD") {
        return Ok(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no password: set BLETCHLEY_NEW_PASSWORD or run on a terminal");
    }
    let a = Zeroizing::new(rpassword::prompt_password(format!(
        "new password for {name}: "
    ))?);
    let b = Zeroizing::new(rpassword::prompt_password("again: ")?);
    if a != b {
        anyhow::bail!("the two passwords differ; nothing changed");
    }
    Ok(a)
}
