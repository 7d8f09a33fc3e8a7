//! The people of the sandbox world. Nobody is stored: a person is derived from how they are named
//! (a username, a phone number) and the world's seed, so every process and every run agrees on who
//! they are and how their privacy is set. The mix of traits is configuration ([`PeopleMix`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Shares of the audience with each trait (0–1). The defaults resemble what inviting tools report of
/// real audiences: a quarter refuse being added by strangers, some want Premium or Stars for a message,
/// a few are gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeopleMix {
    /// Usernames nobody holds (`USERNAME_NOT_OCCUPIED`).
    pub username_not_occupied: f64,
    /// Phone numbers with no Telegram account (a contact import finds nobody).
    pub phone_unregistered: f64,
    /// Deleted accounts.
    pub deactivated: f64,
    pub bot: f64,
    /// Privacy forbids being added; `missing_invitees` with no flag.
    pub invite_privacy: f64,
    /// … with `premium_would_allow_invite`.
    pub invite_privacy_premium_would_allow: f64,
    /// … with `premium_required_for_pm`.
    pub invite_privacy_premium_required_for_pm: f64,
    /// Already in the maximum number of channels (`USER_CHANNELS_TOO_MUCH`).
    pub too_many_channels: f64,
    /// Left the group themselves (`USER_NOT_MUTUAL_CONTACT`).
    pub left_themselves: f64,
    /// Accept messages from strangers only if the sender has Premium (`PRIVACY_PREMIUM_REQUIRED`).
    pub messages_need_premium: f64,
    /// Charge Stars per message (`ALLOW_PAYMENT_REQUIRED_X`).
    pub paid_messages: f64,
}

impl Default for PeopleMix {
    fn default() -> Self {
        Self {
            username_not_occupied: 0.05,
            phone_unregistered: 0.30,
            deactivated: 0.02,
            bot: 0.01,
            invite_privacy: 0.15,
            invite_privacy_premium_would_allow: 0.05,
            invite_privacy_premium_required_for_pm: 0.04,
            too_many_channels: 0.01,
            left_themselves: 0.02,
            messages_need_premium: 0.08,
            paid_messages: 0.02,
        }
    }
}

impl PeopleMix {
    /// Everyone exists and accepts every invite and message.
    pub fn nobody_refuses() -> Self {
        Self {
            username_not_occupied: 0.0,
            phone_unregistered: 0.0,
            deactivated: 0.0,
            bot: 0.0,
            invite_privacy: 0.0,
            invite_privacy_premium_would_allow: 0.0,
            invite_privacy_premium_required_for_pm: 0.0,
            too_many_channels: 0.0,
            left_themselves: 0.0,
            messages_need_premium: 0.0,
            paid_messages: 0.0,
        }
    }

    /// Shares must be fractions, and the shares of one draw must not add up past 1.
    pub fn check(&self) -> Result<(), String> {
        let all = [
            ("username_not_occupied", self.username_not_occupied),
            ("phone_unregistered", self.phone_unregistered),
            ("deactivated", self.deactivated),
            ("bot", self.bot),
            ("invite_privacy", self.invite_privacy),
            (
                "invite_privacy_premium_would_allow",
                self.invite_privacy_premium_would_allow,
            ),
            (
                "invite_privacy_premium_required_for_pm",
                self.invite_privacy_premium_required_for_pm,
            ),
            ("too_many_channels", self.too_many_channels),
            ("left_themselves", self.left_themselves),
            ("messages_need_premium", self.messages_need_premium),
            ("paid_messages", self.paid_messages),
        ];
        if let Some((name, v)) = all.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(format!("people.{name} must be between 0 and 1, got {v}"));
        }
        let sums = [
            ("deactivated + bot", self.deactivated + self.bot),
            (
                "the invite traits",
                self.invite_privacy
                    + self.invite_privacy_premium_would_allow
                    + self.invite_privacy_premium_required_for_pm
                    + self.too_many_channels
                    + self.left_themselves,
            ),
            ("the message traits", self.messages_need_premium + self.paid_messages),
        ];
        match sums.iter().find(|(_, s)| *s > 1.0) {
            Some((name, s)) => Err(format!("people: {name} add up to {s}, more than 1")),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Being {
    Person,
    Deactivated,
    Bot,
}

/// How a person answers being added to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvite {
    Accepts,
    /// Privacy forbids it; the flags of `missingInvitee`.
    Privacy {
        premium_would_allow: bool,
        premium_required_for_pm: bool,
    },
    TooManyChannels,
    LeftThemselves,
}

/// How a person answers a message from a stranger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMessage {
    Accepts,
    NeedsPremium,
    /// Stars per message.
    Paid(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    pub user_id: i64,
    pub being: Being,
    pub on_invite: OnInvite,
    pub on_message: OnMessage,
}

/// The world's people, for one seed and mix.
#[derive(Debug, Clone)]
pub struct People {
    seed: u64,
    mix: PeopleMix,
}

impl People {
    pub fn new(seed: u64, mix: PeopleMix) -> Self {
        Self { seed, mix }
    }

    /// The person holding this username, if anyone does.
    pub fn by_username(&self, username: &str) -> Option<Person> {
        let key = format!("u:{}", username.to_lowercase());
        (self.draw(&key, "exists") >= self.mix.username_not_occupied).then(|| self.person(self.user_id(&key)))
    }

    /// The person with this phone number (digits with `+`), if it has an account.
    pub fn by_phone(&self, phone: &str) -> Option<Person> {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        let key = format!("p:{digits}");
        (self.draw(&key, "exists") >= self.mix.phone_unregistered).then(|| self.person(self.user_id(&key)))
    }

    /// Who has this id (every id the world hands out is a person's).
    pub fn person(&self, user_id: i64) -> Person {
        let id = user_id.to_string();
        let m = &self.mix;
        let being = pick(
            self.draw(&id, "being"),
            &[(m.deactivated, Being::Deactivated), (m.bot, Being::Bot)],
            Being::Person,
        );
        let on_invite = pick(
            self.draw(&id, "invite"),
            &[
                (
                    m.invite_privacy,
                    OnInvite::Privacy {
                        premium_would_allow: false,
                        premium_required_for_pm: false,
                    },
                ),
                (
                    m.invite_privacy_premium_would_allow,
                    OnInvite::Privacy {
                        premium_would_allow: true,
                        premium_required_for_pm: false,
                    },
                ),
                (
                    m.invite_privacy_premium_required_for_pm,
                    OnInvite::Privacy {
                        premium_would_allow: false,
                        premium_required_for_pm: true,
                    },
                ),
                (m.too_many_channels, OnInvite::TooManyChannels),
                (m.left_themselves, OnInvite::LeftThemselves),
            ],
            OnInvite::Accepts,
        );
        let stars = 10 + (self.draw(&id, "stars") * 990.0) as u32;
        let on_message = pick(
            self.draw(&id, "message"),
            &[
                (m.messages_need_premium, OnMessage::NeedsPremium),
                (m.paid_messages, OnMessage::Paid(stars)),
            ],
            OnMessage::Accepts,
        );
        Person {
            user_id,
            being,
            on_invite,
            on_message,
        }
    }

    /// The access hash an account gets for a user or channel: bound to that account.
    pub fn access_hash(&self, account_id: &str, id: i64) -> i64 {
        self.hash64(&format!("access:{account_id}:{id}"))
    }

    /// A stable id for a key, in the range of real Telegram ids.
    pub fn stable_id(&self, key: &str) -> i64 {
        1_000_000_000 + (self.hash64(&format!("id:{key}")).unsigned_abs() % 4_000_000_000) as i64
    }

    fn user_id(&self, key: &str) -> i64 {
        self.stable_id(key)
    }

    /// A uniform draw in [0, 1) for this key and purpose.
    fn draw(&self, key: &str, purpose: &str) -> f64 {
        (self.hash64(&format!("draw:{purpose}:{key}")) as u64 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn hash64(&self, what: &str) -> i64 {
        let digest = Sha256::new()
            .chain_update(self.seed.to_le_bytes())
            .chain_update(what.as_bytes())
            .finalize();
        i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }
}

fn pick<T: Copy>(draw: f64, shares: &[(f64, T)], otherwise: T) -> T {
    let mut upto = 0.0;
    for (share, value) in shares {
        upto += share;
        if draw < upto {
            return *value;
        }
    }
    otherwise
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_is_the_same_person_for_every_process_and_differs_by_seed() {
        let a = People::new(7, PeopleMix::default());
        let b = People::new(7, PeopleMix::default());
        let other = People::new(8, PeopleMix::default());
        let found = (0..50).find_map(|i| a.by_username(&format!("person{i}"))).unwrap();
        let name = (0..50)
            .map(|i| format!("person{i}"))
            .find(|n| a.by_username(n).is_some())
            .unwrap();
        assert_eq!(a.by_username(&name), b.by_username(&name));
        assert_eq!(a.by_username(&name.to_uppercase()), b.by_username(&name));
        assert_eq!(found, a.by_username(&name).unwrap());
        assert_ne!(
            a.by_username(&name).map(|p| p.user_id),
            other.by_username(&name).map(|p| p.user_id)
        );
        assert_ne!(
            a.access_hash("acc-1", found.user_id),
            a.access_hash("acc-2", found.user_id)
        );
    }

    #[test]
    fn the_mix_is_what_was_configured() {
        let people = People::new(1, PeopleMix::default());
        let n = 20_000;
        let present: Vec<Person> = (0..n).filter_map(|i| people.by_username(&format!("u{i}"))).collect();
        let share = |f: &dyn Fn(&Person) -> bool| present.iter().filter(|p| f(p)).count() as f64 / present.len() as f64;
        let missing = 1.0 - present.len() as f64 / n as f64;
        assert!((missing - 0.05).abs() < 0.01, "{missing}");
        let privacy = share(&|p| matches!(p.on_invite, OnInvite::Privacy { .. }));
        assert!((privacy - 0.24).abs() < 0.015, "{privacy}");
        let deactivated = share(&|p| p.being == Being::Deactivated);
        assert!((deactivated - 0.02).abs() < 0.005, "{deactivated}");
        let phones: usize = (0..n)
            .filter(|i| people.by_phone(&format!("+4479{i:08}")).is_none())
            .count();
        assert!((phones as f64 / n as f64 - 0.30).abs() < 0.015, "{phones}");
    }

    #[test]
    fn a_mix_that_cannot_be_is_refused_with_its_name() {
        let mix = PeopleMix {
            invite_privacy: 0.9,
            left_themselves: 0.2,
            ..PeopleMix::default()
        };
        assert!(mix.check().unwrap_err().contains("invite traits"));
        let mix = PeopleMix {
            bot: 1.5,
            ..PeopleMix::default()
        };
        assert!(mix.check().unwrap_err().contains("people.bot"));
        assert!(PeopleMix::default().check().is_ok());
    }
}
