-- wrk script: GET /gateway/v1/check?resource=$RESOURCE with a bearer access token,
-- x-api-key and org header (TOKEN, CLIENT_ID, ORG from the environment).
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.headers["x-api-key"] = os.getenv("CLIENT_ID")
wrk.headers["x-gw-ims-org-id"] = os.getenv("ORG")
-- wrk prints 'Non-2xx or 3xx responses' when any request was denied.
