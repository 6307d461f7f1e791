// Type-checked against the TypeScript types openapi-typescript generates from the admin
// API's OpenAPI document (scripts/openapi-client/check.sh): a client generator gets one
// name per operation, and the request and response shapes a client relies on.
import type { paths, operations } from "./api";

type CreateApp = operations["createApp"]["requestBody"]["content"]["application/json"];
type App = operations["readApp"]["responses"][200]["content"]["application/json"];
type AppPage = operations["listApps"]["responses"][200]["content"]["application/json"];
type NewSecret = operations["createSecret"]["responses"][201]["content"]["application/json"];
type Problem = operations["createApp"]["responses"]["4XX"]["content"]["application/problem+json"];

export const create: CreateApp = { org_id: "4F2A9C1B7D3E5A6B8C0D1E2F@Org", name: "Billing sync" };
export const clientId = (app: App): string => app.client_id;
export const ids = (page: AppPage): string[] => page.items.map((a) => a.client_id);
export const secret = (s: NewSecret): string => s.secret;
export const status = (p: Problem): number => p.status;
export type ReadOrg = paths["/admin/v1/orgs/{org_id}"]["get"];
