#!/usr/bin/python3
"""Issue 14's own utility measure: holdout AUC of a logistic regression.

    lr_auc.py LABEL POSITIVE SEED HOLDOUT.csv TRAIN.csv [SYNTHETIC.csv]

LogisticRegression(max_iter=1000) trained on the real rows (TRAIN, the
seeds) plus the synthetic rows if given (real_only: none), categorical
columns one-hot, numeric columns standardised (both fitted on the training
rows), scored by the AUC of the positive label on the holdout.  A column is
numeric when every non-empty value of the training rows parses as a float;
empty cells are a category of their own, or the training mean.  The label
is positive when its text is POSITIVE, 't' or 'true'.  Prints the AUC.
"""
import csv
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def read(path):
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def is_float(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


def main():
    label, positive, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    header, hold = read(sys.argv[4])
    train = []
    for path in sys.argv[5:]:
        h, rows = read(path)
        if h != header:
            sys.exit('lr_auc.py: %s has columns %s, not %s' % (path, h, header))
        train += rows
    li = header.index(label)
    feats = [i for i in range(len(header)) if i != li]
    numeric = [i for i in feats if all(is_float(r[i]) for r in train if r[i] != '')]
    categ = [i for i in feats if i not in numeric]
    pos = {positive, 't', 'true'}

    def y_of(rows):
        return np.array([r[li] in pos for r in rows], dtype=int)

    def num_of(rows, means=None):
        x = np.array([[float(r[i]) if r[i] != '' else np.nan for i in numeric] for r in rows],
                     dtype=float).reshape(len(rows), len(numeric))
        if means is None:
            means = np.nanmean(x, axis=0) if len(numeric) else np.zeros(0)
            means = np.where(np.isnan(means), 0.0, means)
        return np.where(np.isnan(x), means, x), means

    def cat_of(rows):
        return np.array([[r[i] for i in categ] for r in rows], dtype=object).reshape(len(rows), len(categ))

    ytr, yho = y_of(train), y_of(hold)
    xn, means = num_of(train)
    scaler = StandardScaler().fit(xn) if numeric else None
    parts = [scaler.transform(xn)] if numeric else []
    enc = None
    if categ:
        enc = OneHotEncoder(handle_unknown='ignore').fit(cat_of(train))
        parts.append(enc.transform(cat_of(train)).toarray())
    xtr = np.hstack(parts)
    hn, _ = num_of(hold, means)
    hparts = [scaler.transform(hn)] if numeric else []
    if categ:
        hparts.append(enc.transform(cat_of(hold)).toarray())
    xho = np.hstack(hparts)
    model = LogisticRegression(max_iter=1000, random_state=seed).fit(xtr, ytr)
    print('%.6f' % roc_auc_score(yho, model.predict_proba(xho)[:, 1]))


if __name__ == '__main__':
    main()
