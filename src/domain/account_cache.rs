//! Accounts kept in memory between requests, so that checking a bearer token usually reads
//! nothing from the database.
//!
//! An account is only kept while every change to it is heard (`store::account_changes`):
//! those this process makes, at once, and on PostgreSQL those anyone else makes, as they
//! commit. On SQLite nothing announces another process's changes (the command line's, say),
//! so nothing is kept there and every check reads the database.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::Account;

/// Enough for every account active in the last seconds of a large service; past it, the
/// older reads are dropped.
const MOST_KEPT: usize = 50_000;

pub struct AccountCache {
    /// How long an account is answered from memory at most.
    ttl: Duration,
    kept: RwLock<Kept>,
}

#[derive(Default)]
struct Kept {
    /// Changes are being heard; nothing is kept otherwise.
    listening: bool,
    /// Counts every change heard. A read that started before a change may have seen the
    /// account as it was: it is not kept (see [`AccountCache::keep`]).
    generation: u64,
    accounts: HashMap<Uuid, (Arc<Account>, Instant)>,
}

/// Taken before an account is read from the database, and handed back to keep it.
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket(u64);

impl AccountCache {
    pub fn new(ttl: Duration) -> AccountCache {
        AccountCache {
            ttl,
            kept: RwLock::default(),
        }
    }

    pub fn get(&self, user_id: Uuid) -> Option<Arc<Account>> {
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
        kept.accounts
            .get(&user_id)
            .filter(|(_, read_at)| read_at.elapsed() < self.ttl)
            .map(|(account, _)| Arc::clone(account))
    }

    /// A ticket for a read whose account may be kept: none while changes are not heard (on
    /// SQLite, always), so a read there costs no lock for writing.
    pub fn ticket(&self) -> Option<ReadTicket> {
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
        kept.listening.then_some(ReadTicket(kept.generation))
    }

    /// Keeps `account`, read from the database after `ticket` was taken, unless a change was
    /// heard in between (the read may predate it) or changes stopped being heard.
    pub fn keep(&self, ticket: ReadTicket, account: Arc<Account>) {
        let mut kept = self.lock();
        if !kept.listening || kept.generation != ticket.0 {
            return;
        }
        if kept.accounts.len() >= MOST_KEPT {
            let young = self.ttl / 2;
            kept.accounts
                .retain(|_, (_, read_at)| read_at.elapsed() < young);
            if kept.accounts.len() >= MOST_KEPT {
                kept.accounts.clear();
            }
        }
        kept.accounts.insert(account.id, (account, Instant::now()));
    }

    /// These accounts changed.
    pub fn forget(&self, user_ids: &[Uuid]) {
        if user_ids.is_empty() {
            return;
        }
        let mut kept = self.lock();
        kept.generation += 1;
        for user_id in user_ids {
            kept.accounts.remove(user_id);
        }
    }

    /// Whether changes are heard from now on: when they stop being heard (or start again,
    /// after changes were missed), everything kept is dropped.
    pub fn set_listening(&self, listening: bool) {
        self.lock().listening = listening;
        self.forget_all();
    }

    /// Drops every account kept, for changes that may have gone unheard.
    pub fn forget_all(&self) {
        let mut kept = self.lock();
        kept.generation += 1;
        kept.accounts.clear();
    }

    fn lock(&self) -> std::sync::RwLockWriteGuard<'_, Kept> {
        self.kept.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::Example;

    use super::*;

    fn account() -> Arc<Account> {
        Arc::new(Account {
            id: Uuid::now_v7(),
            ..Account::example()
        })
    }

    fn listening(ttl: Duration) -> AccountCache {
        let cache = AccountCache::new(ttl);
        cache.set_listening(true);
        cache
    }

    #[test]
    fn an_account_read_is_answered_until_it_changes() {
        let cache = listening(Duration::from_secs(60));
        let account = account();
        cache.keep(cache.ticket().unwrap(), Arc::clone(&account));
        assert!(
            cache
                .get(account.id)
                .is_some_and(|kept| Arc::ptr_eq(&kept, &account))
        );

        cache.forget(&[account.id]);
        assert!(cache.get(account.id).is_none());
    }

    #[test]
    fn a_read_that_started_before_a_change_is_not_kept() {
        let cache = listening(Duration::from_secs(60));
        let account = account();
        let ticket = cache.ticket().unwrap();
        // Any account's change: the read may have seen this one before its change.
        cache.forget(&[Uuid::now_v7()]);
        cache.keep(ticket, Arc::clone(&account));
        assert!(cache.get(account.id).is_none());

        cache.keep(cache.ticket().unwrap(), Arc::clone(&account));
        assert!(cache.get(account.id).is_some());
    }

    #[test]
    fn nothing_is_kept_unless_changes_are_heard() {
        let account = account();
        let deaf = AccountCache::new(Duration::from_secs(60));
        assert!(deaf.ticket().is_none(), "before listening");

        let lost = listening(Duration::from_secs(60));
        lost.keep(lost.ticket().unwrap(), Arc::clone(&account));
        let ticket = lost.ticket().unwrap();
        lost.set_listening(false);
        assert!(
            lost.get(account.id).is_none(),
            "after the announcements were lost"
        );
        assert!(lost.ticket().is_none(), "no ticket while they are lost");
        lost.keep(ticket, Arc::clone(&account));
        assert!(
            lost.get(account.id).is_none(),
            "a read from before the loss"
        );
    }

    #[test]
    fn an_account_is_read_again_after_its_time() {
        let cache = listening(Duration::from_millis(20));
        let account = account();
        cache.keep(cache.ticket().unwrap(), Arc::clone(&account));
        assert!(cache.get(account.id).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.get(account.id).is_none());
    }
}
