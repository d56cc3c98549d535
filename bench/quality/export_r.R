# bench/quality/export_r.R: write the R data sets of the quality report as CSV.
#   Rscript bench/quality/export_r.R OUTDIR
# Writes OUTDIR/movielens.csv, credit_data.csv, mlc_churn.csv (header, NA as
# an empty field).  The data stay in OUTDIR (a temp folder): MovieLens' terms
# forbid redistribution, so nothing here is ever committed.
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[1] else "."
suppressPackageStartupMessages({ library(dslabs); library(modeldata) })

w <- function(df, name)
	write.csv(df, file.path(out, paste0(name, ".csv")), row.names = FALSE, na = "")

# MovieLens latest-small (dslabs): one row per rating.  Kept: user and movie
# ids, release year, the first listed genre, the weekday and hour (UTC) of
# the rating; label click = rating >= 4.  Dropped: title (free text, one per
# movie), rating itself (it defines the label) and the raw timestamp.
Sys.setlocale("LC_TIME", "C")
data(movielens, package = "dslabs")
ml <- movielens
ts <- as.POSIXct(ml$timestamp, origin = "1970-01-01", tz = "UTC")
w(data.frame(
	user_id  = ml$userId,
	movie_id = ml$movieId,
	year     = ml$year,
	genre    = sub("\\|.*$", "", as.character(ml$genres)),
	weekday  = format(ts, "%a"),
	hour     = as.integer(format(ts, "%H")),
	click    = ifelse(ml$rating >= 4, "true", "false")
), "movielens")

# modeldata::credit_data, all 14 columns as they are (label Status).
data(credit_data, package = "modeldata")
w(credit_data, "credit_data")

# modeldata::mlc_churn, all 20 columns (label churn).
data(mlc_churn, package = "modeldata")
w(as.data.frame(mlc_churn), "mlc_churn")
