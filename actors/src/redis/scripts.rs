//! The Lua scripts behind every shared decision. Each runs atomically, reads the clock with
//! Redis `TIME`, and touches keys of one hash tag only (Redis Cluster safe).

use std::sync::LazyLock;

use redis::Script;

/// Sliding-window attempt log. KEYS[1] window zset; ARGV limit, window_us, nonce.
/// Returns {allowed(1|0), retry_after_us}. Refused attempts are recorded too.
pub static ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
if count < limit then
  return {1, 0}
end
-- Keep the log bounded at `limit` entries: the oldest ones fall out first.
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, count - limit)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local retry = window
if oldest[2] then retry = tonumber(oldest[2]) + window - now end
return {0, retry}
"#,
    )
});

/// Concurrency slot. KEYS[1] slot zset (member → expiry ms); ARGV max, member, ttl_ms.
/// Returns 1 when held (new or refreshed), 0 when full.
pub static SLOT_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return 1
"#,
    )
});

/// Refreshes held slots. KEYS[1] slot zset; ARGV ttl_ms, member…. Members no longer held
/// stay released. Returns how many were refreshed.
pub static SLOT_REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local zargs = {}
for i = 2, #ARGV do
  zargs[#zargs + 1] = now + ttl
  zargs[#zargs + 1] = ARGV[i]
end
local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(zargs))
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return n
"#,
    )
});

/// Control lease acquisition. KEYS[1] lease hash, KEYS[2] epoch counter;
/// ARGV conn, subject, ttl_ms. Free or same subject → new epoch; otherwise 0.
/// An epoch is at least Redis `TIME` in milliseconds: after a failover that lost the counter's
/// last increments, a new epoch still exceeds every one handed out before, so a holder whose
/// lease was lost can never renew a newer holder's lease.
pub static LEASE_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cur = redis.call('HGET', KEYS[1], 'subject')
if cur and cur ~= ARGV[2] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, now)
redis.call('SET', KEYS[2], epoch)
redis.call('HSET', KEYS[1], 'conn', ARGV[1], 'subject', ARGV[2], 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return epoch
"#,
    )
});

/// Lease renewal. KEYS[1] lease hash; ARGV epoch, ttl_ms. 1 if still held at that epoch.
pub static LEASE_RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
"#,
    )
});

/// Lease hand-over (a holder's grant). KEYS[1] lease hash, KEYS[2] epoch counter;
/// ARGV epoch, conn, subject, ttl_ms. Held at `epoch` → the new holder at a new epoch; else 0.
pub static LEASE_TRANSFER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  return 0
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'conn', ARGV[2], 'subject', ARGV[3], 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return epoch
"#,
    )
});

/// Lease release. KEYS[1] lease hash; ARGV epoch. 1 if it was held at that epoch.
pub static LEASE_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#,
    )
});

/// Ticket redemption. KEYS[1] claims, KEYS[2] used marker (kept as long as the ticket
/// could still be valid). Returns {1, claims} once, {2} when already used, {0} when unknown.
pub static TICKET_REDEEM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local claims = redis.call('GET', KEYS[1])
if claims then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 1000 then ttl = 1000 end
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'PX', ttl)
  return {1, claims}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {2}
end
return {0}
"#,
    )
});

/// Moderators of a session on every replica. KEYS[1] zset (connection → expiry ms);
/// ARGV ttl_ms, a, r, then `a` members that joined, `r` members to refresh (never re-added once
/// removed), then members that left. Returns {attached, refreshed members that were missing}
/// (members of dead replicas expire with their ttl).
pub static MODERATORS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local a = tonumber(ARGV[2])
local r = tonumber(ARGV[3])
local missing = 0
for i = 4, 3 + a do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
end
for i = 4 + a, 3 + a + r do
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + ttl, ARGV[i]) == 0 then
    missing = missing + 1
  end
end
for i = 4 + a + r, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
if count > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
end
return {count, missing}
"#,
    )
});
