-- The client secret a Wave publisher API token was obtained with: deleting the secret
-- ends the tokens obtained with it, as it ends the access tokens. NULL for tokens issued
-- before this column (they live out their at most 12 hours).
ALTER TABLE wave_api_tokens ADD COLUMN secret_id TEXT;
