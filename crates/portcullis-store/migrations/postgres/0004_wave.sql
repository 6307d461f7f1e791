-- Adobe Wave (seed 004), as on SQLite (same number).: a publisher app's feeds and topics, the OAuth 1.0 tokens that
-- link a subscriber to a point-to-point feed, publisher API tokens, subscriptions and
-- notifications. None of it is decision data for the in-memory view, so no write here
-- feeds `changes`. Everything goes with its app, feed or user (ON DELETE CASCADE, which
-- also covers deleting an app's org). Tokens and secrets are keyed hashes (hex), never
-- the values.

CREATE TABLE feeds (
    id        TEXT COLLATE "C" PRIMARY KEY,
    client_id TEXT COLLATE "C" NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    doc       TEXT NOT NULL
);
CREATE INDEX feeds_by_app ON feeds(client_id, id);

CREATE TABLE topics (
    id      TEXT COLLATE "C" PRIMARY KEY,
    feed_id TEXT COLLATE "C" NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    -- company_<client id>/feed_<id>/<UUID>: what notifications name.
    uri     TEXT COLLATE "C" NOT NULL UNIQUE,
    doc     TEXT NOT NULL
);
CREATE INDEX topics_by_feed ON topics(feed_id, id);

-- Issued by /identity/1.0/oauth/requesttoken; authorized on the authorize page (user and
-- feed set); deleted when exchanged (single use).
CREATE TABLE oauth1_request_tokens (
    hash        TEXT COLLATE "C" PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    expires_at  BIGINT NOT NULL,
    user_id     TEXT COLLATE "C" REFERENCES users(id) ON DELETE CASCADE,
    feed_id     TEXT COLLATE "C" REFERENCES feeds(id) ON DELETE CASCADE
);

-- The link between a subscriber and a point-to-point feed.
CREATE TABLE oauth1_access_tokens (
    hash        TEXT COLLATE "C" PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    feed_id     TEXT COLLATE "C" NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL
);

-- Nonces seen within the timestamp window; a second use of (consumer, nonce, timestamp)
-- is a replay.
CREATE TABLE oauth1_nonces (
    client_id TEXT COLLATE "C" NOT NULL,
    nonce     TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    PRIMARY KEY (client_id, nonce, timestamp)
);
CREATE INDEX oauth1_nonces_by_time ON oauth1_nonces(timestamp);

CREATE TABLE wave_api_tokens (
    hash       TEXT COLLATE "C" PRIMARY KEY,
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);

-- Subscribers of broadcast feeds.
CREATE TABLE subscriptions (
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    feed_id    TEXT COLLATE "C" NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, feed_id)
);
CREATE INDEX subscriptions_by_feed ON subscriptions(feed_id);

-- Notifications, kept for the retention window; id order is acceptance order.
CREATE TABLE notifications (
    id         BIGSERIAL PRIMARY KEY,
    feed_id    TEXT COLLATE "C" NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX notifications_by_time ON notifications(created_at);

-- Who receives each notification, decided when it is accepted (fan-out on write): the
-- linked subscriber of a point-to-point notification, or the feed's subscribers then.
CREATE TABLE inbox (
    user_id         TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    notification_id BIGINT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, notification_id)
);
