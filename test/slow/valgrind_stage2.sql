-- test/slow/valgrind_stage2.sql: the slow steps the regression subset of
-- valgrind.sh leaves out, at a size Memcheck finishes in a few minutes:
-- one stage-2 call (DNN training, Integrated Hessians, weights, draw), the
-- label-free variant, samplellm_interactions and samplellm_evaluate.
\set ON_ERROR_STOP on
\getenv sim_url SAMPLELLM_SIM_URL
SET client_min_messages = warning;
SET samplellm.endpoint = :'sim_url';
SET samplellm.model = 'sim';
SET samplellm.cache = off;
SET samplellm.epochs = 3;
CREATE TABLE vg_t (
    user_id  integer NOT NULL,
    device   text NOT NULL,
    price    numeric(6,2) NOT NULL,
    seen     date,
    clicked  boolean NOT NULL
);
INSERT INTO vg_t
SELECT i % 40, (ARRAY['mobile', 'desktop', 'tablet'])[1 + i % 3],
       round((5 + (i * 37) % 90)::numeric, 2),
       CASE WHEN i % 11 = 0 THEN NULL ELSE date '2024-01-01' + i % 30 END,
       (i * 7) % 5 = 0
FROM generate_series(1, 120) i;
SELECT count(*) AS attribution_rows
FROM samplellm_generate(NULL::vg_t, 20, label => 'clicked', seed => 1);
SELECT samplellm_last_run()->>'resample' AS resample;
SELECT count(*) AS label_free_rows FROM samplellm_generate(NULL::vg_t, 20, seed => 2);
SELECT count(*) AS uniform_rows FROM samplellm_generate(NULL::vg_t, 20, seed => 3, resample => 'uniform');
SELECT count(*) > 0 AS interactions FROM samplellm_interactions('vg_t', label => 'clicked', seed => 1);
CREATE TABLE vg_syn AS SELECT * FROM samplellm_generate(NULL::vg_t, 30, seed => 4, resample => 'none');
SELECT count(*) > 0 AS evaluated FROM samplellm_evaluate('vg_t', 'vg_syn', seed => 1);
-- a failing call in the middle of a transfer, after the pipeline allocated
SET samplellm.model = 'sim?content=invalid';
DO $$ BEGIN
  PERFORM count(*) FROM samplellm_generate(NULL::vg_t, 5, seed => 5);
EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'failed as expected: %', SQLERRM;
END $$;
