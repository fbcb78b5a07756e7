-- Which claim holds a running run: a random token per claim call. The driver re-sends a statement whose reply
-- was lost (wattprint.db.run); a re-sent claim that already committed finds its own token and gets its own
-- attempt back, instead of taking its own fresh lease for another worker's and answering "busy".
ALTER TABLE clustering_runs ADD COLUMN claimed_by text;
