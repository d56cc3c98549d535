-- bench/quality/schema.sql: the tables of the quality report's data sets.
-- Each data set is loaded whole into <name>_full; quality_report.sh splits it.
-- Column names are lower case so no SQL needs quoting; types are the
-- narrowest that hold the data (integers stay integers, labels stay text or
-- boolean as the source has them).

-- MovieLens latest-small (dslabs::movielens); label click = rating >= 4.
-- user_id and movie_id are kept as integers (the extension treats them as
-- continuous columns, as it does any number).
CREATE TABLE movielens_full (
	user_id integer, movie_id integer, year integer, genre text,
	weekday text, hour integer, click boolean);

-- modeldata::credit_data; label status (good/bad).
CREATE TABLE credit_data_full (
	status text, seniority integer, home text, "time" integer, age integer,
	marital text, records text, job text, expenses integer, income integer,
	assets integer, debt integer, amount integer, price integer);

-- modeldata::mlc_churn; label churn (yes/no).
CREATE TABLE mlc_churn_full (
	state text, account_length integer, area_code text, international_plan text,
	voice_mail_plan text, number_vmail_messages integer,
	total_day_minutes numeric, total_day_calls integer, total_day_charge numeric,
	total_eve_minutes numeric, total_eve_calls integer, total_eve_charge numeric,
	total_night_minutes numeric, total_night_calls integer, total_night_charge numeric,
	total_intl_minutes numeric, total_intl_calls integer, total_intl_charge numeric,
	number_customer_service_calls integer, churn text);

-- German credit (Weka's credit-g.arff); label class (good/bad).
CREATE TABLE credit_g_full (
	checking_status text, duration integer, credit_history text, purpose text,
	credit_amount integer, savings_status text, employment text,
	installment_commitment integer, personal_status text, other_parties text,
	residence_since integer, property_magnitude text, age integer,
	other_payment_plans text, housing text, existing_credits integer, job text,
	num_dependents integer, own_telephone text, foreign_worker text, class text);
