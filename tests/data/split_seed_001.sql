-- A shared database as teams had it before bulkhead (seed 001): the auth tables and
-- the app tables in one `public` schema, a sequence per table, one foreign key across
-- (projects.user_id -> users.id), a trigger function both sides use, and a view per side.
CREATE TYPE user_status AS ENUM ('active', 'locked');
CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE, status user_status NOT NULL DEFAULT 'active',
                    created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00', updated_at timestamptz);
CREATE TABLE sessions (id bigserial PRIMARY KEY, user_id int NOT NULL REFERENCES users(id), token bytea NOT NULL);
CREATE TABLE refresh_tokens (id bigserial PRIMARY KEY, session_id bigint NOT NULL REFERENCES sessions(id), expires date);
CREATE TABLE api_keys (id serial PRIMARY KEY, user_id int REFERENCES users(id), key_hash text, scopes text[]);
CREATE TABLE permissions (id serial PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE user_roles (id serial PRIMARY KEY, user_id int REFERENCES users(id), permission_id int REFERENCES permissions(id));

CREATE TABLE projects (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users(id), name text NOT NULL,
                       budget numeric(12, 2), updated_at timestamptz);
CREATE TABLE orders (id bigserial PRIMARY KEY, project_id int REFERENCES projects(id), total numeric, placed_at timestamp);
CREATE TABLE messages (id bigserial PRIMARY KEY, project_id int REFERENCES projects(id), body text, meta jsonb);
CREATE TABLE integrations (id serial PRIMARY KEY, project_id int REFERENCES projects(id), kind text, config jsonb);
CREATE TABLE products (id serial PRIMARY KEY, sku text UNIQUE, price double precision, tags text[]);
CREATE TABLE reports (id serial PRIMARY KEY, project_id int REFERENCES projects(id), period interval, data bytea);
CREATE INDEX messages_project ON messages (project_id);
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER projects_touch BEFORE UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE VIEW active_users AS SELECT id, email FROM users WHERE status = 'active';
CREATE VIEW project_totals AS SELECT p.id, sum(o.total) AS total FROM projects p JOIN orders o ON o.project_id = p.id GROUP BY p.id;
COMMENT ON TABLE users IS 'people who log in';

INSERT INTO users (email, status) SELECT 'user' || i || '@example.com', CASE WHEN i % 7 = 0 THEN 'locked' ELSE 'active' END::user_status
  FROM generate_series(1, 300) i;
INSERT INTO sessions (user_id, token) SELECT 1 + i % 300, sha256(i::text::bytea) FROM generate_series(1, 500) i;
INSERT INTO refresh_tokens (session_id, expires) SELECT 1 + i % 500, DATE '2025-01-01' + i FROM generate_series(1, 400) i;
INSERT INTO api_keys (user_id, key_hash, scopes) SELECT 1 + i % 300, md5(i::text), ARRAY['read', 'write'] FROM generate_series(1, 50) i;
INSERT INTO permissions (name) SELECT 'perm_' || i FROM generate_series(1, 20) i;
INSERT INTO user_roles (user_id, permission_id) SELECT 1 + i % 300, 1 + i % 20 FROM generate_series(1, 600) i;
INSERT INTO projects (user_id, name, budget) SELECT 1 + i % 300, 'project ' || i || E' with \'quotes\', tabs\t and ünïcode', i * 10.5
  FROM generate_series(1, 200) i;
INSERT INTO orders (project_id, total, placed_at) SELECT 1 + i % 200, i / 3.0, TIMESTAMP '2024-03-01' + i * INTERVAL '1 hour'
  FROM generate_series(1, 1000) i;
INSERT INTO messages (project_id, body, meta) SELECT 1 + i % 200, repeat('x', i % 50), jsonb_build_object('n', i, 'null', NULL)
  FROM generate_series(1, 800) i;
INSERT INTO messages (project_id, body, meta) VALUES (1, NULL, NULL);
INSERT INTO integrations (project_id, kind, config) SELECT 1 + i % 200, 'webhook', '{"url": "https://example.com"}' FROM generate_series(1, 30) i;
INSERT INTO products (sku, price, tags) SELECT 'sku-' || i, i * 0.1, ARRAY['a', NULL] FROM generate_series(1, 100) i;
INSERT INTO reports (project_id, period, data) SELECT 1 + i % 200, i * INTERVAL '1 day 2 hours', '\x00ff'::bytea FROM generate_series(1, 40) i;
-- sequences move on past the rows (a deleted tail): the targets must continue where the source was
SELECT setval('users_id_seq', 1000);
