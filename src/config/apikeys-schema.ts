// The Apikeys route plugin's settings: where credentials are read from (Otoroshi's extractors,
// in its detection order), what reaches the backend, and the header the gateway asserts.
import { z } from "zod";
import { assertedHeaderName, headerName } from "./fields.ts";

/** null disables that source. */
const sourceName = z.string().min(1).nullable();

const ExtractorBase = { enabled: z.boolean().default(true).describe("Use this extractor") };

export const ApikeysConfig = z
  .strictObject({
    extractors: z
      .strictObject({
        clientId: z
          .strictObject({
            ...ExtractorBase,
            headerName: headerName.nullable().default("x-api-key").describe("Header carrying the client id; null: none"),
            queryName: sourceName.default("x-api-key").describe("Query parameter; null: none"),
            cookieName: sourceName.default("x-api-key").describe("Cookie; null: none"),
          })
          .prefault({})
          .describe("client id only (keys with allowClientIdOnly)"),
        customHeaders: z
          .strictObject({
            ...ExtractorBase,
            clientIdHeaderName: headerName.default("Otoroshi-Client-Id").describe("Header carrying the client id"),
            clientSecretHeaderName: headerName.default("Otoroshi-Client-Secret").describe("Header carrying the client secret"),
          })
          .prefault({})
          .describe("client id and secret in two headers"),
        jwt: z
          .strictObject({
            ...ExtractorBase,
            headerName: headerName.nullable().default("Otoroshi-Token").describe("Header carrying the token (besides Authorization: Bearer); null: none"),
            queryName: sourceName.default("bearer_auth").describe("Query parameter; null: none"),
            cookieName: sourceName.default("access_token").describe("Cookie; null: none"),
          })
          .prefault({})
          .describe("access tokens issued by this gateway's ClientCredentialService"),
        basic: z
          .strictObject({
            ...ExtractorBase,
            headerName: headerName.nullable().default("Otoroshi-Authorization").describe("Header carrying Basic credentials (besides Authorization: Basic); null: none"),
            queryName: sourceName.default("basic_auth").describe("Query parameter with base64 id:secret; null: none"),
            cookieName: sourceName.default("basic_auth").describe("Cookie with base64 id:secret; null: none"),
          })
          .prefault({})
          .describe("HTTP Basic (RFC 7617), standard or URL-safe base64, scheme case-insensitive"),
        otoBearer: z
          .strictObject({
            ...ExtractorBase,
            headerName: headerName.nullable().default("Otoroshi-Token").describe("Header carrying the bearer (besides Authorization: Bearer); null: none"),
            queryName: sourceName.default("bearer_auth").describe("Query parameter; null: none"),
            cookieName: sourceName.default("bearer").describe("Cookie; null: none"),
          })
          .prefault({})
          .describe("otoapk_<clientId>_<hmac> bearers"),
      })
      .prefault({})
      .describe("Where credentials are read from; detection order: clientId, customHeaders, jwt, basic, otoBearer"),
    mandatory: z.boolean().default(true).describe("false: requests without credentials pass (a presented credential is still checked)."),
    wipeBackendRequest: z.boolean().default(true).describe(
      "Remove every credential source of the enabled extractors (headers, query parameters, cookies) before calling the backend; a gateway JWT is forwarded in Authorization.",
    ),
    clientIdHeaderName: assertedHeaderName.nullable().default("Otoroshi-Authenticated-Client-Id").describe("Header telling the backend which client called; set by the gateway only. null: none."),
  })
  .prefault({});
