//! The Lua scripts of the read-modify-write operations: each runs atomically
//! on the primary and takes the app clock's now as an argument.

use std::sync::LazyLock;

use redis::Script;

/// Stores `ARGV[2]` (an envelope) with real ttl `ARGV[3]` ms unless a value
/// whose envelope expiry is after `ARGV[1]` (now, ms) exists. A value without
/// a readable envelope counts as absent.
pub(super) static PUT_IF_ABSENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if sep then
    local exp = tonumber(string.sub(v, 1, sep - 1))
    if exp and exp > tonumber(ARGV[1]) then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
",
    )
});

/// Adds one to the counter at `KEYS[1]` and returns the new count and the
/// counter's envelope expiry (ms: which window it is). `ARGV[1]` is now
/// (ms), `ARGV[2]` the expiry of a new counter (ms, as text) and `ARGV[3]`
/// its real ttl (ms). A live counter keeps its envelope expiry and its Redis
/// ttl; an absent, clock-expired or unreadable one restarts at 1.
pub(super) static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if sep then
    local exp_text = string.sub(v, 1, sep - 1)
    local exp = tonumber(exp_text)
    local n = tonumber(string.sub(v, sep + 1))
    if exp and n and exp > tonumber(ARGV[1]) then
      n = n + 1
      redis.call('SET', KEYS[1], exp_text .. '|' .. string.format('%d', n), 'KEEPTTL')
      return {n, exp}
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2] .. '|1', 'PX', ARGV[3])
return {1, tonumber(ARGV[2])}
",
    )
});

/// Takes one from the live counter at `KEYS[1]` (never below zero), keeping
/// its envelope expiry and Redis ttl, if its envelope expiry is `ARGV[2]`
/// (the window the count being given back fell in); `ARGV[1]` is now (ms).
/// An absent, clock-expired, unreadable or newer counter is left alone.
pub(super) static DECREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if sep then
    local exp_text = string.sub(v, 1, sep - 1)
    local exp = tonumber(exp_text)
    local n = tonumber(string.sub(v, sep + 1))
    if exp and n and exp > tonumber(ARGV[1]) and exp == tonumber(ARGV[2]) and n > 0 then
      redis.call('SET', KEYS[1], exp_text .. '|' .. string.format('%d', n - 1), 'KEEPTTL')
      return n - 1
    end
  end
end
return 0
",
    )
});

/// Adds member `ARGV[3]` with expiry `ARGV[2]` (ms) to the sorted set at
/// `KEYS[1]` after removing members expired at `ARGV[1]` (now, ms), and
/// extends the key's real ttl to `ARGV[4]` ms if it was shorter.
pub(super) static SET_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local ttl = tonumber(ARGV[4])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
",
    )
});
