-- Fencing for the ledger's stream partitions. The Redis lease says who should apply a partition;
-- this row says who may write for it: taking a partition over bumps its epoch (the new owner's
-- fencing token), and every batch commit share-locks the rows of its partitions and checks that it
-- still holds the epochs it claimed. A worker that lost its lease without noticing (a long pause,
-- a partition from Redis) therefore cannot commit; and a takeover waits for a commit in flight, so
-- the new owner loads state that includes it.
CREATE TABLE ledger_partitions (
    partition   integer     PRIMARY KEY CHECK (partition >= 0),
    epoch       bigint      NOT NULL CHECK (epoch > 0),
    owner       text        NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);
