//! The Graph presence **subscription manager**, sans-IO: which user ids to watch, `now_ms`
//! (milliseconds since the Unix epoch), HTTP answers and incoming notifications in; the HTTP
//! requests to make ([`Request`]) and the presences read out. It performs nothing itself: the
//! hub's driver (`crates/hub/src/graph_link.rs`) sends the requests and feeds the answers back.
//!
//! Documented semantics it follows (Microsoft Graph v1.0: "Get change notifications for
//! presence updates in Microsoft Teams" (`changenotifications-for-presence`), "subscription
//! resource type", "Create subscription", "Update subscription", "Receive change
//! notifications through webhooks", "Reduce missing subscriptions and change notifications"
//! (lifecycle notifications), "Microsoft Graph throttling guidance"; seed `003_…`):
//!
//! - one subscription per batch of at most [`MAX_IDS_PER_REQUEST`] (650) ids, resource
//!   `/communications/presences?$filter=id in ('a','b')`, `changeType: updated`, our random
//!   `clientState`, `expirationDateTime` at most an hour ahead ([`MAX_PRESENCE_EXPIRATION_MS`]);
//! - renewed (`PATCH /subscriptions/{id}` with a new `expirationDateTime`) once
//!   [`SubscriptionConfig::renew_before_ms`] is left; a renewal answered 404 (the subscription
//!   expired or was removed) re-creates it and reads the batch's presences again, since
//!   changes in between were not notified;
//! - change notifications are accepted only for a subscription we hold **and** our
//!   `clientState` ([`Manager::on_notifications`]); anything else is counted as rejected and
//!   ignored. Presence notifications without resource data name the user
//!   (`resourceData.id`, or `resource` `communications/presences('id')`); their presences are
//!   then read with `POST /communications/getPresencesByUserId` (one request per 650 ids);
//! - lifecycle notifications (`lifecycleEvent`): `reauthorizationRequired` → renew (a PATCH
//!   reauthorizes, "Reduce missing subscriptions": "renew the subscription ... also
//!   reauthorizes it"); `subscriptionRemoved` → create it again and resync its ids; `missed`
//!   → resync its ids through `getPresencesByUserId`;
//! - 429 (and 503) with `Retry-After: <seconds>` → that request waits that long; without the
//!   header, or after another failure, exponential backoff from
//!   [`SubscriptionConfig::retry_base_ms`] to [`SubscriptionConfig::retry_max_ms`].
//!
//! Every step is bounded: one request in flight per subscription, at most one resync request
//! per 650 ids, and failures back off.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{MAX_IDS_PER_REQUEST, Presence, read_presence};

/// Graph's longest presence subscription: one hour (`changenotifications-for-presence`).
pub const MAX_PRESENCE_EXPIRATION_MS: u64 = 3_600_000;
/// Longest `clientState` Graph accepts (128 characters; "subscription resource type").
pub const MAX_CLIENT_STATE_LEN: usize = 128;

/// Settings of a [`Manager`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// Where Graph posts change notifications (public HTTPS in production).
    pub notification_url: String,
    /// Where Graph posts lifecycle notifications (`lifecycleNotificationUrl`).
    pub lifecycle_url: String,
    /// Our secret `clientState` (random; ≤ 128 characters); checked on every notification.
    pub client_state: String,
    /// Lifetime asked for on create and renew (default and at most 60 min).
    pub expiration_ms: u64,
    /// Renew when this much lifetime is left (default 10 min; seed `003_…` renews presence
    /// subscriptions every 10 min).
    pub renew_before_ms: u64,
    /// First backoff after a failure (default 2 s).
    pub retry_base_ms: u64,
    /// Longest backoff (default 5 min).
    pub retry_max_ms: u64,
    /// Ids per subscription (default and at most 650).
    pub max_ids: usize,
}

impl SubscriptionConfig {
    /// Defaults for these URLs and `clientState` (60 min lifetime, renew with 10 min left).
    pub fn new(notification_url: &str, lifecycle_url: &str, client_state: &str) -> Self {
        Self {
            notification_url: notification_url.to_owned(),
            lifecycle_url: lifecycle_url.to_owned(),
            client_state: client_state.to_owned(),
            expiration_ms: MAX_PRESENCE_EXPIRATION_MS,
            renew_before_ms: 600_000,
            retry_base_ms: 2_000,
            retry_max_ms: 300_000,
            max_ids: MAX_IDS_PER_REQUEST,
        }
    }
}

/// An HTTP request for the driver to send to Graph (paths relative to the Graph base URL, e.g.
/// `https://graph.microsoft.com/v1.0`), answered through [`Manager::on_response`] with the same
/// `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Correlates the answer.
    pub id: u64,
    /// `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// `/subscriptions`, `/subscriptions/{id}`, `/communications/getPresencesByUserId`.
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

/// What one notification request held ([`Manager::on_notifications`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationOutcome {
    /// Items accepted (our subscription, our `clientState`).
    pub accepted: usize,
    /// Items ignored: unknown subscription, wrong or missing `clientState`, unreadable.
    pub rejected: usize,
    /// Lifecycle events accepted, by name (`missed`, …).
    pub lifecycle: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Renew,
    Delete,
}

#[derive(Debug, Clone)]
struct Slot {
    ids: Vec<String>,
    /// Graph's subscription id once created.
    graph_id: Option<String>,
    expires_at: u64,
    /// When the next operation is due.
    due_at: u64,
    /// The next operation.
    next: Op,
    in_flight: Option<u64>,
    failures: u32,
    /// Wanted no more: delete once created.
    retired: bool,
}

/// The subscription manager (see the module docs). Time only comes in as `now_ms`.
#[derive(Debug)]
pub struct Manager {
    config: SubscriptionConfig,
    wanted: BTreeSet<String>,
    slots: Vec<Slot>,
    /// Ids whose presence must be read, and when the read may be sent.
    resync: BTreeSet<String>,
    resync_due: u64,
    resync_failures: u32,
    resync_in_flight: BTreeMap<u64, Vec<String>>,
    next_request: u64,
}

fn quote(id: &str) -> String {
    format!("'{}'", id.replace('\'', "''"))
}

/// The presence subscription resource for these ids:
/// `/communications/presences?$filter=id in ('a','b')` (single quotes doubled, OData).
pub fn presence_resource(ids: &[String]) -> String {
    let list: Vec<String> = ids.iter().map(|id| quote(id)).collect();
    format!(
        "/communications/presences?$filter=id in ({})",
        list.join(",")
    )
}

/// Reads the ids of a presence subscription resource (`/communications/presences/{id}` or
/// `/communications/presences?$filter=id in ('a','b')`, leading slash optional, `$filter`
/// case-insensitive, `''` an escaped quote). `None` when it is not a presence resource or the
/// list is malformed or empty.
pub fn parse_presence_resource(resource: &str) -> Option<Vec<String>> {
    let rest = resource
        .trim()
        .trim_start_matches('/')
        .strip_prefix("communications/presences")?;
    if let Some(id) = rest.strip_prefix('/') {
        return (!id.is_empty() && !id.contains(['/', '?'])).then(|| vec![id.to_owned()]);
    }
    let filter = rest.strip_prefix('?')?;
    let (key, value) = filter.split_once('=')?;
    if !key.eq_ignore_ascii_case("$filter") {
        return None;
    }
    let list = value.trim().strip_prefix("id in")?.trim();
    let inner = list.strip_prefix('(')?.strip_suffix(')')?;
    let mut ids = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next()? != '\'' {
            return None;
        }
        let mut id = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    id.push('\'');
                }
                '\'' => break,
                c => id.push(c),
            }
        }
        ids.push(id);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(_) => return None,
        }
    }
    (!ids.is_empty()).then_some(ids)
}

/// The user id a presence notification names: `resourceData.id`, else the id in `resource`
/// (`communications/presences('id')` or `communications/presences/id`).
pub fn notified_id(item: &Value) -> Option<String> {
    if let Some(id) = item.pointer("/resourceData/id").and_then(Value::as_str) {
        return Some(id.to_owned());
    }
    let resource = item.get("resource")?.as_str()?.trim_start_matches('/');
    let rest = resource.strip_prefix("communications/presences")?;
    let id = rest
        .strip_prefix("('")
        .and_then(|r| r.strip_suffix("')"))
        .or_else(|| rest.strip_prefix('/'))?;
    (!id.is_empty()).then(|| id.to_owned())
}

impl Manager {
    /// A manager watching nothing yet.
    pub fn new(config: SubscriptionConfig) -> Self {
        Self {
            config,
            wanted: BTreeSet::new(),
            slots: Vec::new(),
            resync: BTreeSet::new(),
            resync_due: 0,
            resync_failures: 0,
            resync_in_flight: BTreeMap::new(),
            next_request: 1,
        }
    }

    /// The ids to watch. Subscriptions covering ids no longer wanted are deleted (Graph lets a
    /// PATCH change only `expirationDateTime` and `notificationUrl`, not the resource); ids not
    /// covered yet get new subscriptions of at most `max_ids`, and their presences are read.
    pub fn set_watched<I: IntoIterator<Item = String>>(&mut self, ids: I, now_ms: u64) {
        let wanted: BTreeSet<String> = ids.into_iter().filter(|i| !i.is_empty()).collect();
        if wanted == self.wanted {
            return;
        }
        let added: Vec<String> = wanted.difference(&self.wanted).cloned().collect();
        self.wanted = wanted;
        let max = self.config.max_ids.clamp(1, MAX_IDS_PER_REQUEST);
        let mut covered = BTreeSet::new();
        for slot in &mut self.slots {
            if slot.retired {
                continue;
            }
            if slot.ids.iter().all(|id| self.wanted.contains(id)) {
                covered.extend(slot.ids.iter().cloned());
            } else {
                slot.retired = true;
                slot.next = Op::Delete;
                slot.due_at = now_ms;
                // Those still wanted move to a new subscription below.
            }
        }
        // Compaction: more live subscriptions than two beyond the minimum → start over.
        let live = self.slots.iter().filter(|s| !s.retired).count();
        if live > self.wanted.len().div_ceil(max) + 2 {
            for slot in &mut self.slots {
                if !slot.retired {
                    slot.retired = true;
                    slot.next = Op::Delete;
                    slot.due_at = now_ms;
                }
            }
            covered.clear();
        }
        let rest: Vec<String> = self.wanted.difference(&covered).cloned().collect();
        for chunk in rest.chunks(max) {
            self.slots.push(Slot {
                ids: chunk.to_vec(),
                graph_id: None,
                expires_at: 0,
                due_at: now_ms,
                next: Op::Create,
                in_flight: None,
                failures: 0,
                retired: false,
            });
        }
        // A retired slot never created and not in flight can go now.
        self.slots
            .retain(|s| !(s.retired && s.graph_id.is_none() && s.in_flight.is_none()));
        self.queue_resync(added, now_ms);
    }

    fn queue_resync(&mut self, ids: impl IntoIterator<Item = String>, now_ms: u64) {
        let before = self.resync.len();
        self.resync.extend(ids);
        if self.resync.len() > before && self.resync_failures == 0 {
            self.resync_due = self.resync_due.min(now_ms);
        }
    }

    /// The ids being watched.
    pub fn watched(&self) -> impl Iterator<Item = &String> {
        self.wanted.iter()
    }

    /// Graph's ids of the live subscriptions (created, not retired).
    pub fn subscription_ids(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| !s.retired)
            .filter_map(|s| s.graph_id.clone())
            .collect()
    }

    /// How many subscriptions are wanted (created or still to create).
    pub fn subscription_count(&self) -> usize {
        self.slots.iter().filter(|s| !s.retired).count()
    }

    fn request_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    fn expiration(&self, now_ms: u64) -> String {
        format_utc(
            now_ms
                + self
                    .config
                    .expiration_ms
                    .clamp(1_000, MAX_PRESENCE_EXPIRATION_MS),
        )
    }

    /// The requests due at `now_ms` (each slot with at most one in flight; presences to read
    /// in batches of 650). Call again at [`Manager::next_deadline`] or after any input.
    pub fn poll(&mut self, now_ms: u64) -> Vec<Request> {
        let mut out = Vec::new();
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            if slot.in_flight.is_some() || slot.due_at > now_ms {
                continue;
            }
            let (method, path, body) = match (slot.next, &slot.graph_id) {
                (Op::Delete, None) => continue,
                (Op::Delete, Some(gid)) => ("DELETE", format!("/subscriptions/{gid}"), None),
                (Op::Renew, Some(gid)) => (
                    "PATCH",
                    format!("/subscriptions/{gid}"),
                    Some(json!({ "expirationDateTime": self.expiration(now_ms) })),
                ),
                (Op::Create, _) | (Op::Renew, None) => (
                    "POST",
                    "/subscriptions".to_owned(),
                    Some(json!({
                        "changeType": "updated",
                        "notificationUrl": self.config.notification_url,
                        "lifecycleNotificationUrl": self.config.lifecycle_url,
                        "resource": presence_resource(&slot.ids),
                        "expirationDateTime": self.expiration(now_ms),
                        "clientState": self.config.client_state,
                    })),
                ),
            };
            let id = self.request_id();
            self.slots[i].in_flight = Some(id);
            out.push(Request {
                id,
                method,
                path,
                body,
            });
        }
        if !self.resync.is_empty() && self.resync_in_flight.is_empty() && self.resync_due <= now_ms
        {
            let ids: Vec<String> = std::mem::take(&mut self.resync).into_iter().collect();
            for chunk in ids.chunks(MAX_IDS_PER_REQUEST) {
                let id = self.request_id();
                self.resync_in_flight.insert(id, chunk.to_vec());
                out.push(Request {
                    id,
                    method: "POST",
                    path: "/communications/getPresencesByUserId".to_owned(),
                    body: Some(json!({ "ids": chunk })),
                });
            }
        }
        out
    }

    /// When [`Manager::poll`] next has something to send (`None`: nothing is scheduled, or
    /// everything due is in flight).
    pub fn next_deadline(&self) -> Option<u64> {
        let slots = self
            .slots
            .iter()
            .filter(|s| s.in_flight.is_none() && !(s.next == Op::Delete && s.graph_id.is_none()))
            .map(|s| s.due_at);
        let resync = (!self.resync.is_empty() && self.resync_in_flight.is_empty())
            .then_some(self.resync_due);
        slots.chain(resync).min()
    }

    fn backoff(&self, failures: u32) -> u64 {
        let factor = 1u64 << failures.saturating_sub(1).min(20);
        self.config
            .retry_base_ms
            .saturating_mul(factor)
            .min(self.config.retry_max_ms)
    }

    /// The answer to request `id`: HTTP `status`, the `Retry-After` header in seconds if any,
    /// and the JSON body (`Value::Null` when none or unreadable). Returns the presences read
    /// (from a `getPresencesByUserId` answer; empty otherwise). Unknown ids are ignored.
    pub fn on_response(
        &mut self,
        id: u64,
        status: u16,
        retry_after_s: Option<u64>,
        body: &Value,
        now_ms: u64,
    ) -> Vec<(String, Presence)> {
        if let Some(ids) = self.resync_in_flight.remove(&id) {
            if (200..300).contains(&status) {
                self.resync_failures = 0;
                return body
                    .get("value")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(read_presence)
                    .filter(|(id, _)| self.wanted.contains(id))
                    .collect();
            }
            self.resync_failures += 1;
            let wait = retry_after_s
                .filter(|_| status == 429 || status == 503)
                .map(|s| s.saturating_mul(1000))
                .unwrap_or_else(|| self.backoff(self.resync_failures));
            self.resync_due = now_ms + wait;
            let wanted = &self.wanted;
            self.resync
                .extend(ids.into_iter().filter(|i| wanted.contains(i)));
            return Vec::new();
        }
        let Some(i) = self.slots.iter().position(|s| s.in_flight == Some(id)) else {
            return Vec::new();
        };
        let renew_at = |expires: u64, config: &SubscriptionConfig| {
            expires
                .saturating_sub(config.renew_before_ms)
                .max(now_ms + 1_000)
        };
        let config = self.config.clone();
        let backoff = self.backoff(self.slots[i].failures + 1);
        let slot = &mut self.slots[i];
        slot.in_flight = None;
        let op = match (slot.next, &slot.graph_id) {
            (Op::Renew, None) => Op::Create,
            (op, _) => op,
        };
        let mut resync = Vec::new();
        match (op, status) {
            (Op::Delete, 200..=299 | 404) => {
                self.slots.remove(i);
                return Vec::new();
            }
            (Op::Create | Op::Renew, 200..=299) => {
                slot.failures = 0;
                if op == Op::Create {
                    slot.graph_id = body.get("id").and_then(Value::as_str).map(str::to_owned);
                }
                let expires = body
                    .get("expirationDateTime")
                    .and_then(Value::as_str)
                    .and_then(parse_utc)
                    .unwrap_or(now_ms + config.expiration_ms);
                slot.expires_at = expires;
                if slot.graph_id.is_none() {
                    // A 2xx without an id: treat as a failure and create again.
                    slot.failures += 1;
                    slot.next = Op::Create;
                    slot.due_at = now_ms + backoff;
                } else if slot.retired {
                    slot.next = Op::Delete;
                    slot.due_at = now_ms;
                } else {
                    slot.next = Op::Renew;
                    slot.due_at = renew_at(expires, &config);
                }
            }
            (Op::Renew, 404) => {
                // Expired or removed: create again; changes in between were not notified.
                slot.graph_id = None;
                slot.failures = 0;
                if slot.retired {
                    self.slots.remove(i);
                    return Vec::new();
                }
                slot.next = Op::Create;
                slot.due_at = now_ms;
                resync = slot.ids.clone();
            }
            (_, 429 | 503) if retry_after_s.is_some() => {
                slot.failures += 1;
                slot.due_at = now_ms + retry_after_s.unwrap_or(0).saturating_mul(1000);
            }
            _ => {
                slot.failures += 1;
                slot.due_at = now_ms + backoff;
            }
        }
        self.queue_resync(resync, now_ms);
        Vec::new()
    }

    fn slot_of(&self, subscription_id: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| !s.retired && s.graph_id.as_deref() == Some(subscription_id))
    }

    /// A notification request's JSON body (`{"value": [...]}`), change and lifecycle items
    /// alike. Items naming a subscription we do not hold, or without our `clientState`, are
    /// rejected. Accepted change items queue a read of the named users' presences;
    /// `reauthorizationRequired` renews now, `subscriptionRemoved` creates again and reads
    /// the batch, `missed` reads the batch.
    pub fn on_notifications(&mut self, body: &Value, now_ms: u64) -> NotificationOutcome {
        let mut outcome = NotificationOutcome::default();
        let items = body.get("value").and_then(Value::as_array);
        let mut resync = Vec::new();
        for item in items.into_iter().flatten() {
            let client_state = item.get("clientState").and_then(Value::as_str);
            let slot = item
                .get("subscriptionId")
                .and_then(Value::as_str)
                .and_then(|s| self.slot_of(s));
            let (Some(i), true) = (
                slot,
                client_state == Some(self.config.client_state.as_str()),
            ) else {
                outcome.rejected += 1;
                continue;
            };
            match item.get("lifecycleEvent").and_then(Value::as_str) {
                Some(event) => {
                    let slot = &mut self.slots[i];
                    match event {
                        "reauthorizationRequired" => {
                            if slot.in_flight.is_none() {
                                slot.next = Op::Renew;
                                slot.due_at = now_ms;
                            }
                        }
                        "subscriptionRemoved" => {
                            slot.graph_id = None;
                            slot.next = Op::Create;
                            slot.due_at = now_ms;
                            slot.in_flight = None;
                            resync.extend(slot.ids.iter().cloned());
                        }
                        "missed" => resync.extend(slot.ids.iter().cloned()),
                        _ => {
                            outcome.rejected += 1;
                            continue;
                        }
                    }
                    outcome.lifecycle.push(event.to_owned());
                    outcome.accepted += 1;
                }
                None => match notified_id(item) {
                    Some(id) if self.slots[i].ids.contains(&id) => {
                        resync.push(id);
                        outcome.accepted += 1;
                    }
                    _ => outcome.rejected += 1,
                },
            }
        }
        self.queue_resync(resync, now_ms);
        outcome
    }
}

/// Formats milliseconds since the Unix epoch as ISO-8601 UTC with milliseconds
/// (`2026-12-05T13:00:00.000Z`), Graph's `expirationDateTime` shape.
pub fn format_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// Reads an ISO-8601 UTC date-time as Graph writes it (`2026-12-05T13:00:00Z`,
/// `…:00.1234567Z`, `…:00+00:00`) into milliseconds since the Unix epoch. Offsets other than
/// UTC are applied. `None` for anything else.
pub fn parse_utc(text: &str) -> Option<u64> {
    let t = text.trim();
    let (date, time) = t.split_once(['T', 't'])?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_min) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?),
        )
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let mi: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next()?.parse().ok()?;
    if h > 23 || mi > 59 || s > 60 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let millis: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Howard Hinnant's days_from_civil.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let total = ((days * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60) * 1000) + millis;
    u64::try_from(total).ok()
}

#[cfg(test)]
#[path = "subscriptions_tests.rs"]
mod tests;
