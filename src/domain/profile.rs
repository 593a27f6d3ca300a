//! The signed-in user's own record: reading it and changing the editable fields.

use chrono::NaiveDate;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, TryIntoModel,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::{Account, AuthService, error::AuthError, error::FieldErrors};
use crate::store::{profiles, users};

const MAX_NAME_CHARS: usize = 150;
const MAX_BIO_CHARS: usize = 1000;
const MAX_URL_BYTES: usize = 2048;

/// A partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub phone_number: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub date_of_birth: Option<Option<String>>,
}

impl AuthService {
    /// The account behind a verified access token. A user deleted or disabled since the token
    /// was minted is refused: tokens are stateless, accounts are not.
    pub async fn current_account(&self, user_id: Uuid) -> Result<Account, AuthError> {
        match load_account(&self.db, user_id).await? {
            Some(account) if account.user.is_active => Ok(account),
            _ => Err(AuthError::Unauthorized),
        }
    }

    pub async fn update_profile(
        &self,
        user_id: Uuid,
        changes: ProfileChanges,
    ) -> Result<Account, AuthError> {
        let today = self.clock.now().date_naive();
        let mut errors = FieldErrors::new();
        let first_name = changes.first_name.map(|value| {
            errors.check(
                "first_name",
                parse_name(value.as_deref().unwrap_or_default()),
            )
        });
        let last_name = changes.last_name.map(|value| {
            errors.check(
                "last_name",
                parse_name(value.as_deref().unwrap_or_default()),
            )
        });
        let phone_number = changes.phone_number.map(|value| {
            errors.check(
                "phone_number",
                parse_phone(value.as_deref().unwrap_or_default()),
            )
        });
        let bio = changes.bio.map(|value| {
            errors.check(
                "profile.bio",
                parse_bio(value.as_deref().unwrap_or_default()),
            )
        });
        let avatar_url = changes.avatar_url.map(|value| {
            errors.check(
                "profile.avatar_url",
                parse_avatar_url(value.as_deref().unwrap_or_default()),
            )
        });
        let date_of_birth = changes.date_of_birth.map(|value| {
            errors.check(
                "profile.date_of_birth",
                parse_date_of_birth(value.as_deref().unwrap_or_default(), today),
            )
        });
        errors.into_result()?;

        let txn = self.begin().await?;
        let Some(Account { user, profile }) = load_account(&txn, user_id).await? else {
            return Err(AuthError::Unauthorized);
        };
        if !user.is_active {
            return Err(AuthError::Unauthorized);
        }
        let mut user = user.into_active_model();
        let mut profile = profile.into_active_model();
        // Every value below passed its check above, so the inner options are all `Some`.
        if let Some(Some(value)) = first_name {
            user.first_name = Set(value);
        }
        if let Some(Some(value)) = last_name {
            user.last_name = Set(value);
        }
        if let Some(Some(value)) = phone_number {
            user.phone_number = Set(value);
        }
        if let Some(Some(value)) = bio {
            profile.bio = Set(value);
        }
        if let Some(Some(value)) = avatar_url {
            profile.avatar_url = Set(value);
        }
        if let Some(Some(value)) = date_of_birth {
            profile.date_of_birth = Set(value);
        }
        user.updated_at = Set(self.clock.now());
        let user = user.update(&txn).await?;
        let profile = profile.try_into_model()?;
        // An upsert: should the profile row ever be missing, it is created, not a 500.
        profiles::Entity::insert(profiles::ActiveModel {
            user_id: Set(profile.user_id),
            bio: Set(profile.bio.clone()),
            avatar_url: Set(profile.avatar_url.clone()),
            date_of_birth: Set(profile.date_of_birth),
        })
        .on_conflict(
            OnConflict::column(profiles::Column::UserId)
                .update_columns([
                    profiles::Column::Bio,
                    profiles::Column::AvatarUrl,
                    profiles::Column::DateOfBirth,
                ])
                .to_owned(),
        )
        .exec(&txn)
        .await?;
        txn.commit().await?;
        Ok(Account { user, profile })
    }
}

/// One query: the user joined with their profile.
pub(super) async fn load_account(
    db: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
) -> Result<Option<Account>, AuthError> {
    let found = users::Entity::find_by_id(user_id)
        .find_also_related(profiles::Entity)
        .one(db)
        .await?;
    Ok(found.map(|(user, profile)| account_of(user, profile)))
}

/// Every user gets a profile row at registration; an empty one stands in should it be gone.
pub(super) fn account_of(user: users::Model, profile: Option<profiles::Model>) -> Account {
    let profile = profile.unwrap_or_else(|| empty_profile(user.id));
    Account { user, profile }
}

pub(super) fn empty_profile(user_id: Uuid) -> profiles::Model {
    profiles::Model {
        user_id,
        bio: String::new(),
        avatar_url: None,
        date_of_birth: None,
    }
}

/// Characters that render as nothing or reorder text: in a name they only serve to spoof.
fn is_invisible_or_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// A first or last name: trimmed, at most 150 characters, nothing invisible. Empty clears.
pub(super) fn parse_name(raw: &str) -> Result<String, Vec<String>> {
    let name = raw.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(vec![format!(
            "Ensure this field has no more than {MAX_NAME_CHARS} characters."
        )]);
    }
    if name.chars().any(is_invisible_or_control) {
        return Err(vec!["Contains control or invisible characters.".into()]);
    }
    Ok(name.to_string())
}

/// A phone number in international form: an optional `+` and 7 to 15 digits. Empty clears.
pub(super) fn parse_phone(raw: &str) -> Result<Option<String>, Vec<String>> {
    let phone = raw.trim();
    if phone.is_empty() {
        return Ok(None);
    }
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    if (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(Some(phone.to_string()))
    } else {
        Err(vec![
            "Enter a phone number like +15551234567 (7 to 15 digits).".into(),
        ])
    }
}

fn parse_bio(raw: &str) -> Result<String, Vec<String>> {
    if raw.chars().count() > MAX_BIO_CHARS {
        return Err(vec![format!(
            "Ensure this field has no more than {MAX_BIO_CHARS} characters."
        )]);
    }
    if raw
        .chars()
        .any(|c| c != '\n' && c != '\t' && is_invisible_or_control(c))
    {
        return Err(vec!["Contains control or invisible characters.".into()]);
    }
    Ok(raw.trim().to_string())
}

fn parse_avatar_url(raw: &str) -> Result<Option<String>, Vec<String>> {
    let url = raw.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let valid = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= MAX_URL_BYTES
        && url
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty())
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii());
    if valid {
        Ok(Some(url.to_string()))
    } else {
        Err(vec![format!(
            "Enter a valid http(s) URL of at most {MAX_URL_BYTES} bytes."
        )])
    }
}

fn parse_date_of_birth(raw: &str, today: NaiveDate) -> Result<Option<NaiveDate>, Vec<String>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| vec!["Enter a date as YYYY-MM-DD.".to_string()])?;
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    if date < earliest || date > today {
        return Err(vec!["Enter a date between 1900-01-01 and today.".into()]);
    }
    Ok(Some(date))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_spoofing_characters() {
        assert_eq!(parse_name("  Zoë  ").unwrap(), "Zoë");
        assert_eq!(parse_name("李小龍").unwrap(), "李小龍");
        assert!(parse_name("Eve\u{202E}lin").is_err());
        assert!(parse_name("Ad\u{200B}min").is_err());
        assert!(parse_name("a\u{0}b").is_err());
        assert!(parse_name(&"x".repeat(151)).is_err());
    }

    #[test]
    fn phones_are_international_digits() {
        assert_eq!(
            parse_phone("+15551234567").unwrap().as_deref(),
            Some("+15551234567")
        );
        assert_eq!(parse_phone("").unwrap(), None);
        for bad in ["+1", "555-1234-567", "phone", "+١٢٣٤٥٦٧٨"] {
            assert!(parse_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_and_urls() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert!(parse_date_of_birth("1990-02-28", today).is_ok());
        assert!(parse_date_of_birth("1990-02-30", today).is_err());
        assert!(parse_date_of_birth("2026-11-23", today).is_err());
        assert!(parse_avatar_url("https://cdn.example.com/a.png").is_ok());
        assert!(parse_avatar_url("javascript:alert(1)").is_err());
        assert!(parse_avatar_url("https://").is_err());
    }
}
