//! The mass-destruction brake: a principal who shreds more than the configured number of
//! items within the window is stopped, the stop is audited, and only a second admin of
//! their agency lets them go on. Stolen admin credentials (or ransomware acting with them)
//! destroy a few items, not the platform.
//!
//! The setting and each principal's recent shreds live in the catalog's guarded `meta`
//! table: the host cannot reset a count or lift a stop unnoticed.

use super::*;

use crate::catalog::Catalog as _;

const SETTING: &str = "brake";
const STATE: &str = "brake.state";

/// How many shreds one principal may make within how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrakeSetting {
    /// Shreds allowed within the window; the next one stops the principal.
    pub max: u32,
    /// The window, in seconds.
    pub window_s: u64,
}

impl Default for BrakeSetting {
    /// A hundred shreds an hour: far beyond an analyst's or an admin's day-to-day, far below
    /// what wiping a platform needs.
    fn default() -> BrakeSetting {
        BrakeSetting {
            max: 100,
            window_s: 3600,
        }
    }
}

/// One principal's recent shreds and whether the brake stopped them.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Recent {
    /// Unix milliseconds of their shreds within the window.
    shreds: Vec<i64>,
    /// When the brake stopped them, while it holds.
    stopped_ms: Option<i64>,
}

/// A principal the brake has stopped.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Stopped {
    /// Who.
    pub principal: String,
    /// Their agency.
    pub agency: String,
    /// Since when (Unix milliseconds).
    pub since_ms: i64,
}

impl Platform {
    /// The brake's setting.
    pub fn brake_setting(&self) -> Result<BrakeSetting> {
        match self.catalog.meta(SETTING)? {
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| Error::Layout(format!("the brake setting is unreadable: {e}"))),
            None => Ok(BrakeSetting::default()),
        }
    }

    /// Sets the brake (an operator's act, audited). A window of at least a minute and at
    /// least one shred: a brake that stops every shred is no brake but a ban.
    pub fn set_brake(&mut self, setting: BrakeSetting) -> Result<()> {
        if setting.max == 0 || setting.window_s < 60 || setting.window_s > 366 * 86_400 {
            return Err(Error::Invalid(
                "the brake needs at least 1 shred per window and a window from 60 s to a year"
                    .into(),
            ));
        }
        let json = serde_json::to_string(&setting).map_err(|e| Error::Layout(e.to_string()))?;
        self.record(
            Actor::Operator,
            "brake.set",
            vec![format!("{} per {} s", setting.max, setting.window_s)],
            None,
            Outcome::Allowed,
            None,
        )?;
        self.catalog.set_meta(SETTING, &json)
    }

    fn brake_state(&self) -> Result<BTreeMap<String, Recent>> {
        match self.catalog.meta(STATE)? {
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| Error::Layout(format!("the brake's state is unreadable: {e}"))),
            None => Ok(BTreeMap::new()),
        }
    }

    fn save_brake_state(&self, state: &BTreeMap<String, Recent>) -> Result<()> {
        let json = serde_json::to_string(state).map_err(|e| Error::Layout(e.to_string()))?;
        self.catalog.set_meta(STATE, &json)
    }

    /// Counts one shred by `principal` (of `agency`) against the brake, or refuses it: when
    /// the brake already holds them, or when this shred would pass the limit (which stops
    /// them, audited as `brake.stopped`).
    pub(super) fn brake_check(&mut self, principal: &str, agency: &str) -> Result<()> {
        let setting = self.brake_setting()?;
        let mut state = self.brake_state()?;
        let now = now_ms();
        let window_ms = i64::try_from(setting.window_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let braked = || Error::Braked {
            principal: principal.to_owned(),
            agency: agency.to_owned(),
            max: setting.max,
            window_s: setting.window_s,
        };
        let recent = state.entry(principal.to_owned()).or_default();
        if recent.stopped_ms.is_some() {
            return Err(braked());
        }
        recent.shreds.retain(|t| now.saturating_sub(*t) < window_ms);
        if recent.shreds.len() >= setting.max as usize {
            recent.stopped_ms = Some(now);
            self.record(
                Actor::System(SystemActor::Platform),
                "brake.stopped",
                vec![principal.to_owned(), agency.to_owned()],
                None,
                Outcome::Refused,
                Some(format!(
                    "more than {} shreds within {} s",
                    setting.max, setting.window_s
                )),
            )?;
            self.save_brake_state(&state)?;
            return Err(braked());
        }
        recent.shreds.push(now);
        self.save_brake_state(&state)
    }

    /// The principals the brake holds now.
    pub fn brake_stopped(&self) -> Result<Vec<Stopped>> {
        let mut out = Vec::new();
        for (name, r) in self.brake_state()? {
            if let Some(since_ms) = r.stopped_ms {
                let agency = self.principal(&name).map(|p| p.agency).unwrap_or_default();
                out.push(Stopped {
                    principal: name,
                    agency,
                    since_ms,
                });
            }
        }
        Ok(out)
    }

    /// Releases the brake on `stopped`: only a second admin of their agency may, and the
    /// count starts again.
    pub fn release_brake(&mut self, admin: &str, stopped: &str) -> Result<()> {
        let actor = Actor::Principal(admin.to_owned());
        let targets = vec![stopped.to_owned()];
        let who = match self.acting(admin) {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(&actor, "brake.release", targets, None, e)),
        };
        let them = match self.principal(stopped) {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(&actor, "brake.release", targets, None, e)),
        };
        if !who.may_release_brake(&them) {
            let e = Error::RoleRequired {
                principal: admin.into(),
                role: "admin (of the stopped principal's agency, and not the stopped principal)",
                act: "release the mass-destruction brake",
            };
            return Err(self.refuse(&actor, "brake.release", targets, None, e));
        }
        let mut state = self.brake_state()?;
        let held = state.get(stopped).is_some_and(|r| r.stopped_ms.is_some());
        if !held {
            let e = Error::Invalid(format!("the brake does not hold {stopped}"));
            return Err(self.refuse(&actor, "brake.release", targets, None, e));
        }
        state.remove(stopped);
        self.record(
            actor,
            "brake.release",
            targets,
            None,
            Outcome::Allowed,
            None,
        )?;
        self.save_brake_state(&state)
    }
}
