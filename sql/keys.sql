-- keys: primary, unique and foreign keys, identity, serial and generated
-- columns, on a recommendation schema (users x items x clicks) with a
-- self-reference, a composite foreign key and natural unique keys (issue 13).
SET client_min_messages = warning;
SET samplellm.max_concurrency = 1;
SET samplellm.cache = off;
CREATE SCHEMA keys;
SET search_path = keys, public;

CREATE TABLE users (
    id      serial PRIMARY KEY,
    email   text NOT NULL UNIQUE,
    age     int NOT NULL,
    country text NOT NULL
);
CREATE TABLE items (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku      text NOT NULL UNIQUE,
    category text NOT NULL,
    price    numeric(8,2) NOT NULL
);
CREATE TABLE clicks (
    id      serial PRIMARY KEY,
    user_id int NOT NULL REFERENCES users,
    item_id bigint NOT NULL REFERENCES items,
    hour    int NOT NULL CHECK (hour BETWEEN 0 AND 23),
    clicked boolean NOT NULL
);
INSERT INTO users (email, age, country)
SELECT 'user' || i || '@mail.example', 18 + (i * 7) % 60, (ARRAY['NO', 'SE', 'DK', 'FI'])[1 + i % 4]
FROM generate_series(1, 200) i;
INSERT INTO items (sku, category, price)
SELECT 'SKU-' || lpad(i::text, 5, '0'), (ARRAY['books', 'music', 'games'])[1 + i % 3], 5 + (i * 13) % 90
FROM generate_series(1, 100) i;
-- popular items stay popular: item i is clicked about 100 / i times as often as item 100
INSERT INTO clicks (user_id, item_id, hour, clicked)
SELECT 1 + (i * 37) % 200, 1 + floor(100 * power((i % 997) / 997.0, 3))::int, (i * 5) % 24, (i * 7) % 5 = 0
FROM generate_series(1, 2000) i;

-- the roles the catalog gives, in the run record
SELECT count(*) FROM samplellm_generate(NULL::clicks, 30, label => 'clicked', seed => 1);
SELECT key, value FROM jsonb_each_text(samplellm_last_run()->'columns') ORDER BY key;
SELECT samplellm_last_run()->'references'->'clicks_item_id_fkey'->>'parent' AS parent,
       (samplellm_last_run()->'references'->'clicks_item_id_fkey'->>'visible_parents')::int > 50 AS many_parents;

-- new clicks: fresh ids, real references, the real popularity of items
SELECT sim_last_seq() AS seq_before \gset
CREATE TABLE new_clicks AS SELECT * FROM samplellm_generate(NULL::clicks, 300, label => 'clicked', seed => 2);
SELECT count(*) AS rows,
       count(*) FILTER (WHERE id IN (SELECT id FROM clicks)) AS id_collisions,
       count(DISTINCT id) AS distinct_ids,
       count(*) FILTER (WHERE user_id NOT IN (SELECT id FROM users)) AS dangling_users,
       count(*) FILTER (WHERE item_id NOT IN (SELECT id FROM items)) AS dangling_items
FROM new_clicks;
-- the share of clicks on the ten most clicked items, real and synthetic
WITH top AS (SELECT item_id FROM clicks GROUP BY item_id ORDER BY count(*) DESC, item_id LIMIT 10)
SELECT abs((SELECT avg((item_id IN (SELECT item_id FROM top))::int) FROM clicks) -
           (SELECT avg((item_id IN (SELECT item_id FROM top))::int) FROM new_clicks)) < 0.1 AS popularity_kept;
-- every request handed out references, with the item's and the user's attributes
SELECT count(*) > 0 AS requests,
       bool_and(sim_user_message(r) LIKE '%<references>%' AND sim_user_message(r) LIKE '%"category"%'
                AND sim_user_message(r) LIKE '%"age"%') AS context_sent
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before;
-- samplellm_evaluate reports what the keys demand
CREATE TABLE broken_clicks AS SELECT * FROM clicks LIMIT 40;
UPDATE broken_clicks SET item_id = -1 WHERE id % 4 = 0;
SELECT metric, columns, score = 1 AS perfect FROM samplellm_evaluate('clicks', 'new_clicks')
WHERE metric IN ('referential_integrity', 'key_uniqueness') ORDER BY metric, columns;
SELECT metric, columns, round(score::numeric, 2) AS score FROM samplellm_evaluate('clicks', 'broken_clicks')
WHERE metric IN ('referential_integrity', 'key_uniqueness') ORDER BY metric, columns;
-- the most natural augmentation works: into the source itself
INSERT INTO clicks SELECT * FROM samplellm_generate(NULL::clicks, 50, seed => 3);
SELECT samplellm_generate_into('clicks', 'clicks', 50, seed => 4) > 0 AS inserted;
SELECT count(*) AS clicks_now FROM clicks;

-- an LLM that ignores the references it is given: its rows are refused
SET samplellm.model = 'sim?refs=ignore';
SET samplellm.max_calls_per_statement = 3;
SELECT count(*) FROM samplellm_generate(NULL::clicks, 20, seed => 5, resample => 'none');
SELECT (samplellm_last_run()->'rejected'->>'unknown_reference')::int > 0 AS refused;
RESET samplellm.model;
RESET samplellm.max_calls_per_statement;

-- natural unique keys: new values, none the table has, none twice
CREATE TABLE new_users AS SELECT * FROM samplellm_generate(NULL::users, 60, seed => 6);
SELECT count(*) AS rows, count(DISTINCT email) = count(*) AS emails_unique,
       count(*) FILTER (WHERE email IN (SELECT email FROM users)) AS emails_taken,
       count(*) FILTER (WHERE id IN (SELECT id FROM users)) AS id_collisions
FROM new_users;
SELECT samplellm_generate_into('users', 'users', 40, seed => 7) > 0 AS inserted;
SELECT count(*) = count(DISTINCT email) AS still_unique FROM users;
-- GENERATED ALWAYS AS IDENTITY, through generate_into
SELECT samplellm_generate_into('items', 'items', 20, seed => 8) > 0 AS inserted;
SELECT count(*) AS items_now, count(DISTINCT sku) = count(*) AS skus_unique FROM items;

-- the built-in generator honours the same keys and references
SET samplellm.provider = 'builtin';
CREATE TABLE builtin_clicks AS SELECT * FROM samplellm_generate(NULL::clicks, 300, label => 'clicked', seed => 9);
SELECT count(*) AS rows,
       count(*) FILTER (WHERE id IN (SELECT id FROM clicks)) AS id_collisions,
       count(*) FILTER (WHERE user_id NOT IN (SELECT id FROM users) OR item_id NOT IN (SELECT id FROM items)) AS dangling
FROM builtin_clicks;
CREATE TABLE builtin_users AS SELECT * FROM samplellm_generate(NULL::users, 80, seed => 10);
SELECT count(DISTINCT email) = count(*) AS emails_unique,
       count(*) FILTER (WHERE email IN (SELECT email FROM users)) AS emails_taken,
       bool_and(email ~ '^[a-z]+[0-9]+@[a-z]+\.[a-z]+$') AS emails_of_the_real_shape
FROM builtin_users;
SELECT samplellm_generate_into('clicks', 'clicks', 40, seed => 11) > 0 AS inserted;
RESET samplellm.provider;

-- a self-reference: managers are real employees, the top has none
CREATE TABLE employees (
    id         int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name       text NOT NULL,
    manager_id int REFERENCES employees (id),
    dept       text NOT NULL
);
INSERT INTO employees (name, manager_id, dept)
SELECT 'emp' || i, CASE WHEN i <= 6 THEN NULL ELSE 1 + i % 6 END, (ARRAY['sales', 'ops', 'dev'])[1 + i % 3]
FROM generate_series(1, 90) i;
CREATE TABLE new_employees AS SELECT * FROM samplellm_generate(NULL::employees, 60, seed => 12);
SELECT count(*) FILTER (WHERE manager_id IS NOT NULL AND manager_id NOT IN (SELECT id FROM employees)) AS dangling,
       count(*) FILTER (WHERE id IN (SELECT id FROM employees)) AS id_collisions,
       abs(avg((manager_id IS NULL)::int) - 6 / 90.0) < 0.1 AS null_rate_kept
FROM new_employees;
SELECT samplellm_generate_into('employees', 'employees', 20, seed => 13) > 0 AS inserted;

-- a composite foreign key
CREATE TABLE shops (region text, code int, name text NOT NULL, PRIMARY KEY (region, code));
CREATE TABLE sales (
    id        serial PRIMARY KEY,
    region    text NOT NULL,
    shop_code int NOT NULL,
    amount    numeric(8,2) NOT NULL,
    FOREIGN KEY (region, shop_code) REFERENCES shops
);
INSERT INTO shops SELECT (ARRAY['north', 'south'])[1 + i % 2], i, 'shop ' || i FROM generate_series(1, 20) i;
INSERT INTO sales (region, shop_code, amount)
SELECT (ARRAY['north', 'south'])[1 + (i % 20 + 1) % 2], i % 20 + 1, (i * 17) % 300 + 0.5 FROM generate_series(1, 400) i;
CREATE TABLE new_sales AS SELECT * FROM samplellm_generate(NULL::sales, 60, seed => 14);
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (region, shop_code) NOT IN (SELECT region, code FROM shops)) AS dangling
FROM new_sales;
SELECT samplellm_generate_into('sales', 'sales', 30, seed => 15) > 0 AS inserted;

-- an excluded email: synthetic values of its shape, none of them real, and
-- nothing about it in any request
SELECT sim_last_seq() AS seq_before \gset
CREATE TABLE private_users AS SELECT * FROM samplellm_generate(NULL::users, 50, seed => 16, exclude => '{email}');
SELECT count(*) AS rows,
       count(*) FILTER (WHERE email IN (SELECT email FROM users)) AS real_emails,
       bool_and(email ~ '^[a-z]+[0-9]+@[a-z]+\.[a-z]+$') AS of_the_real_shape
FROM private_users;
SELECT bool_and(strpos(lower(r->>'body'), 'email') = 0 AND strpos(r->>'body', 'mail.example') = 0) AS never_sent
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before;
-- copying real values is there when asked for by name
-- (not for a unique key, whose real values are all taken)
SET samplellm.excluded_values = 'copy_real_values';
SELECT bool_and(country IN (SELECT country FROM users)) AS real_countries_copied
FROM samplellm_generate(NULL::users, 20, seed => 17, exclude => '{country}');
\set VERBOSITY default
SELECT * FROM samplellm_generate(NULL::users, 20, seed => 17, exclude => '{email}');
\set VERBOSITY terse
RESET samplellm.excluded_values;
-- a parent's column can be kept out of the context too
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 10, seed => 18, exclude => '{users.country}');
SELECT bool_and(sim_user_message(r) NOT LIKE '%"country"%' AND sim_user_message(r) LIKE '%"age"%') AS country_left_out
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before;

-- related tables in one call: 50 new users and their clicks on existing
-- items, each new user with as many clicks as a real user has, drawn
CREATE TEMP TABLE users_before AS SELECT id FROM users;
CREATE TEMP TABLE clicks_before AS SELECT id FROM clicks;
SELECT sim_last_seq() AS seq_before \gset
SELECT source, rows_inserted > 0 AS inserted, run_id IS NOT NULL AS recorded
FROM samplellm_generate_related('{users,clicks}', 50, labels => '{clicks.clicked}', seed => 20)
ORDER BY source::text;
CREATE TEMP TABLE new_u AS SELECT * FROM users WHERE id NOT IN (SELECT id FROM users_before);
CREATE TEMP TABLE new_c AS SELECT * FROM clicks WHERE id NOT IN (SELECT id FROM clicks_before);
SELECT (SELECT count(*) FROM new_u) AS new_users,
       count(*) FILTER (WHERE user_id NOT IN (SELECT id FROM new_u)) AS clicks_not_on_new_users,
       count(*) FILTER (WHERE item_id NOT IN (SELECT id FROM items)) AS dangling_items
FROM new_c;
-- clicks per user, real (the users before) and new: the two distributions
-- (mean and Kolmogorov-Smirnov distance; the KS bound allows for 50 users)
WITH real_counts AS (SELECT count(c.id) AS k FROM users_before u
                     LEFT JOIN clicks c ON c.user_id = u.id AND c.id IN (SELECT id FROM clicks_before)
                     GROUP BY u.id),
     new_counts AS (SELECT count(c.id) AS k FROM new_u u LEFT JOIN new_c c ON c.user_id = u.id GROUP BY u.id),
     grid AS (SELECT DISTINCT k FROM real_counts UNION SELECT DISTINCT k FROM new_counts)
SELECT round((SELECT avg(k) FROM real_counts), 1) AS real_mean, round((SELECT avg(k) FROM new_counts), 1) AS new_mean,
       abs((SELECT avg(k) FROM real_counts) - (SELECT avg(k) FROM new_counts)) < 3 AS mean_kept,
       round(max(abs((SELECT avg((r.k <= g.k)::int) FROM real_counts r) -
                     (SELECT avg((c.k <= g.k)::int) FROM new_counts c)))::numeric, 2) AS ks,
       max(abs((SELECT avg((r.k <= g.k)::int) FROM real_counts r) -
               (SELECT avg((c.k <= g.k)::int) FROM new_counts c))) < 0.35 AS ks_close
FROM grid g;
-- the new clicks' requests showed the new users they belong to
SELECT count(*) > 0 AS shown FROM sim_requests() r
WHERE sim_user_message(r) LIKE '%<references>%"user_id"%' AND (r->>'seq')::int > :seq_before;

-- the built-in generator fills every new parent's children too (it once
-- asked for nothing forever once the rows, not the strata, were enough)
SET samplellm.provider = 'builtin';
SET statement_timeout = '60s';
CREATE TEMP TABLE users_before2 AS SELECT id FROM users;
SELECT source, rows_inserted FROM samplellm_generate_related('{users,clicks}', 20, labels => '{clicks.clicked}', seed => 21)
ORDER BY source::text;
SELECT count(DISTINCT c.user_id) AS new_users_with_clicks,
       count(*) FILTER (WHERE c.item_id NOT IN (SELECT id FROM items)) AS dangling_items
FROM clicks c WHERE c.user_id NOT IN (SELECT id FROM users_before2);
RESET statement_timeout;
RESET samplellm.provider;

-- bad input, before any request
SELECT sim_last_seq() AS seq_before \gset
\set VERBOSITY default
CREATE ROLE regress_keys_reader;
GRANT USAGE ON SCHEMA keys TO regress_keys_reader;
GRANT SELECT ON clicks TO regress_keys_reader;
GRANT EXECUTE ON FUNCTION samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) TO regress_keys_reader;
SET ROLE regress_keys_reader;
SELECT * FROM samplellm_generate(NULL::clicks, 5);
RESET ROLE;
CREATE TABLE tiny_key (k smallint UNIQUE, v int);
INSERT INTO tiny_key SELECT i, i FROM generate_series(1, 10) i;
SELECT * FROM samplellm_generate(NULL::tiny_key, 70000);
CREATE TYPE level AS ENUM ('low', 'mid', 'high');
CREATE TABLE enum_key (l level UNIQUE, v int);
INSERT INTO enum_key VALUES ('low', 1), ('mid', 2);
SELECT * FROM samplellm_generate(NULL::enum_key, 2);
SELECT * FROM samplellm_generate(NULL::clicks, 5, exclude => '{nowhere.col}');
CREATE TABLE loop_a (id int PRIMARY KEY, b_id int NOT NULL);
CREATE TABLE loop_b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES loop_a);
ALTER TABLE loop_a ADD FOREIGN KEY (b_id) REFERENCES loop_b DEFERRABLE INITIALLY DEFERRED;
SELECT * FROM samplellm_generate_related('{loop_a,loop_b}', 5);
SELECT * FROM samplellm_generate_related('{users,shops}', 5);
SELECT * FROM samplellm_generate_related('{users,clicks}', 5, labels => '{clicked}');
SELECT * FROM samplellm_generate_related('{users,users}', 5);

SELECT sim_last_seq() = :seq_before AS no_request_sent;
\set VERBOSITY terse

-- a quota whose rows the LLM never writes stops after the group's own
-- answers, not after the whole call budget (issue 11, D4)
SELECT sim_last_seq() AS seq_before \gset
SET samplellm.model = 'sim?label=clicked&avoid=true';
\set VERBOSITY default
SELECT * FROM samplellm_generate(NULL::clicks, 20, label => 'clicked', seed => 19, per_group => '{"true": 5}');
\set VERBOSITY terse
SELECT sim_last_seq() - :seq_before <= 8 AS stopped_early;
RESET samplellm.model;

REVOKE ALL ON clicks FROM regress_keys_reader;
REVOKE ALL ON SCHEMA keys FROM regress_keys_reader;
REVOKE ALL ON FUNCTION samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) FROM regress_keys_reader;
DROP ROLE regress_keys_reader;
RESET search_path;
DROP SCHEMA keys CASCADE;
