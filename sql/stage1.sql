-- stage1: diverse exemplars, the prompt built from the catalog, the
-- context budget, and every validation rejection reason.
SET client_min_messages = warning;
SET samplellm.max_concurrency = 1;

-- five well-separated groups: every request gets 2 exemplars from each
CREATE TABLE groups5 (g int NOT NULL, x float8 NOT NULL, tag text NOT NULL);
INSERT INTO groups5
SELECT 1 + i % 5, (1 + i % 5) * 1000 + (i * 7919) % 13, 'tag' || (1 + i % 5)
FROM generate_series(1, 500) i;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::groups5, 200, seed => 1, resample => 'none');
SELECT count(*) AS requests,
       bool_and(n_groups = 5) AS every_group_in_every_request,
       bool_and(n_ex = 10) AS ten_exemplars,
       count(DISTINCT ex) > 1 AS exemplars_drawn_afresh
FROM (SELECT (SELECT count(DISTINCT e->>0) FROM sim_exemplars(r) e) AS n_groups,
             (SELECT count(*) FROM sim_exemplars(r) e) AS n_ex,
             (SELECT string_agg(e::text, ';' ORDER BY e::text) FROM sim_exemplars(r) e) AS ex
      FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before) q;
-- the settings change k and the exemplars per cluster
SET samplellm.clusters = 2;
SET samplellm.exemplars_per_cluster = 3;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::groups5, 10, seed => 2, resample => 'none');
SELECT (SELECT count(*) FROM sim_exemplars(r) e) AS exemplars
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before;
RESET samplellm.clusters;
RESET samplellm.exemplars_per_cluster;

-- the description comes from the catalog and the seeds
CREATE DOMAIN even_int AS int CHECK (VALUE % 2 = 0);
CREATE TABLE shop (
    item     text NOT NULL,
    kind     mood,
    qty      even_int NOT NULL,
    lo       int NOT NULL,
    hi       int NOT NULL,
    CONSTRAINT lo_below_hi CHECK (lo < hi)
);
COMMENT ON TABLE shop IS 'items in a shop';
COMMENT ON COLUMN shop.item IS 'the item sold';
INSERT INTO shop SELECT 'item' || i % 9, (ARRAY['happy','sad','neutral'])[1 + i % 3]::mood,
                        2 * (i % 40), i, i + 1 + i % 5
FROM generate_series(1, 300) i;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::shop, 5, seed => 3, label => 'kind', resample => 'none');
SELECT substring(sim_user_message(r) FROM E'<table_description>\n(.*)\n</table_description>') AS description
FROM sim_requests() r WHERE (r->>'seq')::int = :seq_before + 1;
SELECT r->'body'->'response_format'->'json_schema'->'schema'->'properties'->'rows'->'items'->'properties'->'kind' AS kind_schema
FROM sim_requests() r WHERE (r->>'seq')::int = :seq_before + 1;

-- every rejection reason, counted (mix=1 takes every cell from another
-- exemplar, which breaks lo < hi; the simulator's integer noise breaks even_int)
SET samplellm.model = 'sim?mix=1&copy=0.05&malformed=0.1&wrong_type=0.1&nulls=0.1&dupkey=0.1&badvalue=0.1';
SELECT count(*) FROM samplellm_generate(NULL::shop, 100, seed => 4, resample => 'none');
SELECT key AS reason, value::int > 0 AS counted
FROM jsonb_each(samplellm_last_run()->'rejected') ORDER BY key;
RESET samplellm.model;

-- a 60-column table fits an 8k context: statistics go, exemplars shrink
\set ECHO none
SELECT format('CREATE TABLE wide (%s)',
              string_agg(format('column_with_a_long_name_%s int', i), ', ')) FROM generate_series(1, 60) i \gexec
SELECT format('INSERT INTO wide SELECT %s FROM generate_series(1, 200) r',
              string_agg(format('(r * %s) %% 97', i), ', ')) FROM generate_series(1, 60) i \gexec
\set ECHO all
SELECT count(*) FROM samplellm_generate(NULL::wide, 3, seed => 5, resample => 'none');
SELECT samplellm_last_run()->'prompt_budget'->'statistics' AS statistics_kept,
       (samplellm_last_run()->'prompt_budget'->>'exemplars')::int < 10 AS fewer_exemplars,
       (samplellm_last_run()->'prompt_budget'->>'estimated_prompt_tokens')::int +
       (samplellm_last_run()->'prompt_budget'->>'max_tokens')::int <= 8192 AS fits_8k;
SET samplellm.context_tokens = 32768;
SELECT count(*) FROM samplellm_generate(NULL::wide, 3, seed => 5, resample => 'none');
SELECT samplellm_last_run()->'prompt_budget'->'statistics' AS statistics_kept,
       samplellm_last_run()->'prompt_budget'->'exemplars' AS exemplars;
SET samplellm.context_tokens = 2000;
SELECT count(*) FROM samplellm_generate(NULL::wide, 3, seed => 5, resample => 'none');
RESET samplellm.context_tokens;
RESET samplellm.max_concurrency;
