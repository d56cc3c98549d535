-- cache: settings and SQL functions of the response cache.  Storing and
-- replaying responses is tested end to end (a rerun sends the simulator
-- no second request) by the run tests.

-- Earlier tests may have stored responses: start from an empty cache.
-- (This first call also loads the library, which defines the settings.)
SELECT samplellm_cache_clear() >= 0 AS cleared;

-- The settings, with their defaults, units and who may change them.
SELECT name, boot_val, unit, context, min_val, max_val
FROM pg_settings WHERE name LIKE 'samplellm.cache%' ORDER BY name;
SELECT * FROM samplellm_cache_stats();
SELECT samplellm_cache_clear() AS deleted;

-- Units and limits.
SET samplellm.cache_max_age = '1h';
SHOW samplellm.cache_max_age;
SET samplellm.cache_max_age = -1;
SHOW samplellm.cache_max_age;
SET samplellm.cache_max_age = -2;
SET samplellm.cache_max_size = '1GB';
SHOW samplellm.cache_max_size;
RESET samplellm.cache_max_age;
RESET samplellm.cache_max_size;

-- An ordinary role: no EXECUTE until granted, and only its own switch.
CREATE ROLE regress_cache_user;
SELECT has_function_privilege('regress_cache_user', 'samplellm_cache_clear()', 'EXECUTE') AS can_clear,
       has_function_privilege('regress_cache_user', 'samplellm_cache_stats()', 'EXECUTE') AS can_stats;
SET ROLE regress_cache_user;
SELECT samplellm_cache_clear();
SELECT * FROM samplellm_cache_stats();
SET samplellm.cache = off;
SHOW samplellm.cache;
RESET samplellm.cache;
SET samplellm.cache_max_age = '1h';
SET samplellm.cache_max_size = '1GB';
RESET ROLE;

-- Granted, it clears (and counts) its own entries only: none here.
GRANT EXECUTE ON FUNCTION samplellm_cache_clear(), samplellm_cache_stats() TO regress_cache_user;
SET ROLE regress_cache_user;
SELECT samplellm_cache_clear() AS deleted;
SELECT entries, bytes, expired, oldest, newest FROM samplellm_cache_stats();
RESET ROLE;

REVOKE EXECUTE ON FUNCTION samplellm_cache_clear(), samplellm_cache_stats() FROM regress_cache_user;
DROP ROLE regress_cache_user;
