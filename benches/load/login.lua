-- wrk script for benches/load.sh: every request is a JSON login with the correct password
-- (POST /auth/login). Each success runs one argon2id verification and creates a session.
-- The account comes from $LOGIN_USER and $LOGIN_PASSWORD (plain characters, no quoting needed).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"identifier":"%s","password":"%s"}',
  os.getenv("LOGIN_USER"), os.getenv("LOGIN_PASSWORD"))
