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

/// Lua shared by the counter scripts: `open(v)` splits a stored counter
/// into its envelope expiry (as text and as a number) and its count, all
/// nil unless it is readable and live at `now`; `live_payload(v)` is the
/// payload of any stored value, nil unless its envelope is readable and
/// live.
const COUNTER_LUA: &str = r"
local now = tonumber(ARGV[1])
local function open(v)
  if not v then return nil end
  local sep = string.find(v, '|', 1, true)
  if not sep then return nil end
  local exp_text = string.sub(v, 1, sep - 1)
  local exp = tonumber(exp_text)
  local n = tonumber(string.sub(v, sep + 1))
  if exp and n and exp > now then return exp_text, exp, n end
  return nil
end
local function live_payload(v)
  if not v then return nil end
  local sep = string.find(v, '|', 1, true)
  local exp = sep and tonumber(string.sub(v, 1, sep - 1))
  if exp and exp > now then return string.sub(v, sep + 1) end
  return nil
end
";

/// Counts one on each counter of `KEYS` after the first `ARGV[2]` (0 or 1)
/// keys, in order, unless that first key holds a live value: then its
/// payload is returned and nothing is counted. `ARGV[1]` is now (ms); per
/// counter, three arguments from `ARGV[3]`: the expiry of a new counter
/// (ms, as text), its real ttl (ms) and its limit: the counting stops after
/// a count past it. A live counter keeps its envelope expiry and its Redis
/// ttl; an absent, clock-expired or unreadable one restarts at 1. Returns
/// the count and the envelope expiry (which window) of each counter
/// counted, flat.
pub(super) static COUNT_UNLESS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{COUNTER_LUA}
local bars = tonumber(ARGV[2])
if bars == 1 then
  local barred = live_payload(redis.call('GET', KEYS[1]))
  if barred then
    return barred
  end
end
local out = {{}}
for i = bars + 1, #KEYS do
  local a = 3 + (i - bars - 1) * 3
  local exp_text, exp, n = open(redis.call('GET', KEYS[i]))
  if exp_text then
    n = n + 1
    redis.call('SET', KEYS[i], exp_text .. '|' .. string.format('%d', n), 'KEEPTTL')
  else
    n = 1
    exp = tonumber(ARGV[a])
    redis.call('SET', KEYS[i], ARGV[a] .. '|1', 'PX', ARGV[a + 1])
  end
  table.insert(out, n)
  table.insert(out, exp)
  if n > tonumber(ARGV[a + 2]) then
    break
  end
end
return out
"
    ))
});

/// Takes one from each live counter among the first `#KEYS - ARGV[2]`
/// keys (never below zero), keeping its envelope expiry and Redis ttl, if
/// its envelope expiry is the window its count fell in (`ARGV[3]`
/// onwards, one per counter); an absent, clock-expired, unreadable or
/// newer counter is left alone. `ARGV[1]` is now (ms). Then, if `ARGV[2]`
/// is 1, returns the payload of the last key's value if its envelope is
/// readable and live (as the count's bar is read), else nil.
pub(super) static GIVE_BACK_THEN_GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{COUNTER_LUA}
local reads = tonumber(ARGV[2])
for i = 1, #KEYS - reads do
  local exp_text, exp, n = open(redis.call('GET', KEYS[i]))
  if exp_text and exp == tonumber(ARGV[2 + i]) and n > 0 then
    redis.call('SET', KEYS[i], exp_text .. '|' .. string.format('%d', n - 1), 'KEEPTTL')
  end
end
if reads == 1 then
  local read = live_payload(redis.call('GET', KEYS[#KEYS]))
  if read then
    return read
  end
end
return false
"
    ))
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
