// Versioned schema migrations, applied in order inside one transaction each.
// Append new migrations; never edit one that has shipped.

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'queue, runs, audit, approvals',
    sql: `
CREATE TABLE tasks (
  id            TEXT PRIMARY KEY,           -- TASK-NNN
  folder        TEXT NOT NULL CHECK (folder IN ('backlog','active','completed')),
  file          TEXT NOT NULL,              -- path relative to the workspace
  title         TEXT NOT NULL,
  priority      TEXT NOT NULL,
  prio_rank     INTEGER NOT NULL,           -- 0 critical .. 3 low
  status        TEXT,                       -- front-matter status (blocked, awaiting-approval...)
  agent         TEXT,
  depends_on    TEXT NOT NULL DEFAULT '[]', -- JSON array
  resources     TEXT NOT NULL DEFAULT '[]', -- JSON array
  tags          TEXT NOT NULL DEFAULT '[]', -- JSON array
  valid         INTEGER NOT NULL DEFAULT 1,
  problems      TEXT NOT NULL DEFAULT '[]', -- JSON array of formatted issues
  attempts      INTEGER NOT NULL DEFAULT 0,
  created_ms    INTEGER NOT NULL,           -- age for ordering (file birth or first seen)
  size          INTEGER NOT NULL DEFAULT 0, -- for the change check of list
  mtime_ms      REAL NOT NULL DEFAULT 0,
  updated_ms    INTEGER NOT NULL
);
CREATE INDEX tasks_ready ON tasks(folder, prio_rank, created_ms);
CREATE UNIQUE INDEX tasks_file ON tasks(file);

-- Files that are not valid tasks (no usable id): reported, never moved.
CREATE TABLE invalid_files (
  file      TEXT PRIMARY KEY,
  problems  TEXT NOT NULL,                  -- JSON array of Issue
  size      INTEGER NOT NULL,
  mtime_ms  REAL NOT NULL,
  task_id   TEXT,                           -- the id the file declares, if it has one (reserved for ID assignment)
  reason    TEXT NOT NULL DEFAULT 'invalid' -- invalid | duplicate (a valid file whose id another file holds)
);

CREATE TABLE leases (
  task_id     TEXT PRIMARY KEY REFERENCES tasks(id),
  token       INTEGER NOT NULL,             -- fencing token, strictly increasing per task
  holder      TEXT NOT NULL,                -- worker identity (host:pid:n)
  run_id      TEXT NOT NULL,
  expires_ms  INTEGER NOT NULL
);

-- Highest fencing token ever issued per task, so tokens never repeat after release.
CREATE TABLE fence (
  task_id  TEXT PRIMARY KEY,
  token    INTEGER NOT NULL
);

CREATE TABLE runs (
  id           TEXT PRIMARY KEY,            -- run-YYYYMMDD-HHMMSS-xxxx
  task_id      TEXT NOT NULL,
  agent        TEXT,
  attempt      INTEGER NOT NULL,
  token        INTEGER NOT NULL,
  holder       TEXT NOT NULL,
  brain        TEXT,
  outcome      TEXT,                        -- completed | blocked | released | failed | lost
  reason       TEXT,
  started_ms   INTEGER NOT NULL,
  ended_ms     INTEGER
);
CREATE INDEX runs_task ON runs(task_id, started_ms);

CREATE TABLE events (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms    INTEGER NOT NULL,
  task_id  TEXT,
  run_id   TEXT,
  kind     TEXT NOT NULL,
  data     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_task ON events(task_id, seq);

-- The audit log: one append-only row per tool call, allowed or denied.
CREATE TABLE tool_calls (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms        INTEGER NOT NULL,
  agent        TEXT NOT NULL,
  task_id      TEXT,
  run_id       TEXT,
  tool         TEXT,
  verb         TEXT,
  canonical    TEXT NOT NULL,               -- handles, never values
  class        TEXT,
  decision     TEXT NOT NULL,               -- allow | deny | needs-approval
  rule         TEXT NOT NULL,
  approval_id  TEXT,
  exit_code    INTEGER,
  duration_ms  INTEGER,
  stdout       TEXT,                        -- redacted, truncated excerpt
  stderr       TEXT
);
CREATE INDEX tool_calls_task ON tool_calls(task_id, seq);
CREATE INDEX tool_calls_ts ON tool_calls(ts_ms);
CREATE TRIGGER tool_calls_no_update BEFORE UPDATE ON tool_calls
  BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
CREATE TRIGGER tool_calls_no_delete BEFORE DELETE ON tool_calls
  BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;

CREATE TABLE approvals (
  id           TEXT PRIMARY KEY,            -- apr-xxxx
  task_id      TEXT,
  run_id       TEXT,
  agent        TEXT,
  canonical    TEXT NOT NULL,
  source       TEXT NOT NULL,               -- task-file | person
  state        TEXT NOT NULL,               -- pending | approved | denied | used | expired
  requested_ms INTEGER NOT NULL,
  decided_ms   INTEGER,
  decided_by   TEXT,
  expires_ms   INTEGER NOT NULL,
  used_ms      INTEGER
);
CREATE INDEX approvals_state ON approvals(state, task_id);

CREATE TABLE verifications (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id       TEXT NOT NULL,
  task_id      TEXT NOT NULL,
  criterion    TEXT NOT NULL,
  outcome      TEXT NOT NULL,               -- verified | failed | na | attested | manual
  evidence     TEXT NOT NULL,               -- JSON, redacted
  ts_ms        INTEGER NOT NULL
);

CREATE TABLE messages (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms     INTEGER NOT NULL,
  sender    TEXT NOT NULL,
  recipient TEXT NOT NULL,
  task_id   TEXT,
  body      TEXT NOT NULL
);

CREATE TABLE tokens (
  hash        TEXT PRIMARY KEY,             -- sha256 of the bearer token
  agent       TEXT NOT NULL,
  created_ms  INTEGER NOT NULL,
  revoked_ms  INTEGER
);
`,
  },
  {
    version: 2,
    name: 'knowledge graph, retrospectives, lessons, full-text search',
    sql: `
-- Entities and typed edges, extracted deterministically (core/knowledge-extract.ts).
CREATE TABLE entities (
  id    INTEGER PRIMARY KEY,
  kind  TEXT NOT NULL,                      -- task run agent tool host kube_context namespace compose_project service url_host secret_path file error_signature lesson tag
  name  TEXT NOT NULL,
  UNIQUE (kind, name)
);
CREATE TABLE edges (
  id      INTEGER PRIMARY KEY,
  src     INTEGER NOT NULL,
  kind    TEXT NOT NULL,                    -- touched used verified_by blocked_by depends_on discovered_from failed_with fixed_by run_of
  dst     INTEGER NOT NULL,
  run_id  TEXT,
  origin  TEXT NOT NULL,                    -- run:ID | task:ID | retro:ID: re-indexing an origin replaces its rows
  UNIQUE (src, kind, dst, origin)
);
CREATE INDEX edges_src ON edges(src, kind);
CREATE INDEX edges_dst ON edges(dst, kind);
CREATE INDEX edges_origin ON edges(origin);

CREATE TABLE retrospectives (
  id          TEXT PRIMARY KEY,             -- file stem: retro-YYYYMMDD-HHMMSS-TASK-ID
  run_id      TEXT NOT NULL,
  task_id     TEXT NOT NULL,
  file        TEXT NOT NULL,                -- workspace-relative
  outcome     TEXT,
  created_ms  INTEGER NOT NULL,
  facts       TEXT NOT NULL,                -- JSON, scrubbed
  body        TEXT NOT NULL                 -- the markdown, scrubbed
);
CREATE INDEX retrospectives_run ON retrospectives(run_id);
CREATE INDEX retrospectives_task ON retrospectives(task_id, created_ms);

CREATE TABLE lessons (
  id          INTEGER PRIMARY KEY,
  run_id      TEXT NOT NULL,
  task_id     TEXT NOT NULL,
  retro_id    TEXT,
  rule        TEXT NOT NULL,                -- fixed-after-failure | policy-refusal | needs-approval | criterion-failed | recovered-across-runs
  signature   TEXT,                         -- error signature the lesson is about, if any
  text        TEXT NOT NULL,
  created_ms  INTEGER NOT NULL
);
CREATE INDEX lessons_run ON lessons(run_id);
CREATE INDEX lessons_sig ON lessons(signature);

-- One row per searchable document; kfts.rowid = kdocs.id (deletes go by rowid, never by scan).
CREATE TABLE kdocs (
  id       INTEGER PRIMARY KEY,
  kind     TEXT NOT NULL,                   -- retro | lesson | task | observation
  ref      TEXT NOT NULL,                   -- retro id, lesson id, task id, observation key
  task_id  TEXT,
  run_id   TEXT,
  file     TEXT,
  origin   TEXT NOT NULL,
  ts_ms    INTEGER NOT NULL,
  UNIQUE (kind, ref)
);
CREATE INDEX kdocs_origin ON kdocs(origin);
-- kind is a column so a search can be narrowed to one kind inside MATCH (no post-filtering).
CREATE VIRTUAL TABLE kfts USING fts5(kind, title, body, tokenize = 'porter unicode61', prefix = '2 3');
-- Terms of the index: a prefix longer than the prefix index (3) is expanded to at most a few terms.
CREATE VIRTUAL TABLE kfts_vocab USING fts5vocab(kfts, 'row');
`,
  },
  {
    version: 3,
    name: 'per-run lookups and newest lessons by index',
    sql: `
-- A run's audit rows, events and verifications are read per run (retrospectives, indexing):
-- without these every lookup scans the whole table, growing with history.
CREATE INDEX tool_calls_run ON tool_calls(run_id, seq);
CREATE INDEX events_run ON events(run_id, seq);
CREATE INDEX verifications_run ON verifications(run_id, id);
-- Related lessons walk the newest lessons in ranking tie-break order (knowledge-related.ts).
CREATE INDEX lessons_recent ON lessons(created_ms DESC, id);
`,
  },
  {
    version: 4,
    name: 'ready order fully indexed',
    sql: `
-- The ready set is read in (priority, age, id) order with a LIMIT on the crew's hot path: with id
-- in the index the order needs no sort of the whole backlog and the LIMIT stops the walk early.
CREATE INDEX tasks_ready_order ON tasks(folder, prio_rank, created_ms, id);
DROP INDEX tasks_ready;
`,
  },
  {
    version: 5,
    name: 'fewer pages written per claim and finish',
    sql: `
-- Every page a commit touches is 4 KiB of WAL written and synced. fence and leases are only ever
-- found by task id, so the key is the table (WITHOUT ROWID: one b-tree, not a table plus its key
-- index); events are never deleted, so their sequence needs no AUTOINCREMENT (which writes
-- sqlite_sequence on every insert): a plain INTEGER PRIMARY KEY still only grows.
CREATE TABLE fence_v5 (
  task_id  TEXT PRIMARY KEY,
  token    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO fence_v5 (task_id, token) SELECT task_id, token FROM fence;
DROP TABLE fence;
ALTER TABLE fence_v5 RENAME TO fence;

CREATE TABLE leases_v5 (
  task_id     TEXT PRIMARY KEY,
  token       INTEGER NOT NULL,             -- fencing token, strictly increasing per task
  holder      TEXT NOT NULL,                -- worker identity (host:pid:n)
  run_id      TEXT NOT NULL,
  expires_ms  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO leases_v5 (task_id, token, holder, run_id, expires_ms) SELECT task_id, token, holder, run_id, expires_ms FROM leases;
DROP TABLE leases;
ALTER TABLE leases_v5 RENAME TO leases;

CREATE TABLE events_v5 (
  seq      INTEGER PRIMARY KEY,
  ts_ms    INTEGER NOT NULL,
  task_id  TEXT,
  run_id   TEXT,
  kind     TEXT NOT NULL,
  data     TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO events_v5 (seq, ts_ms, task_id, run_id, kind, data) SELECT seq, ts_ms, task_id, run_id, kind, data FROM events;
DROP TABLE events;
ALTER TABLE events_v5 RENAME TO events;
CREATE INDEX events_task ON events(task_id, seq);
CREATE INDEX events_run ON events(run_id, seq);
DELETE FROM sqlite_sequence WHERE name = 'events';
`,
  },
];
