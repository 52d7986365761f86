// Every call the console makes goes through `api`: one place that signs (in AWS), parses JSON and turns any
// failure into an ApiError whose message a person can read. The page never shows raw JSON.
import { signedHeaders } from "./aws.js";

let loadedConfig = null;

// config.json: written by `merchandiser console` on the twin, by the console stack in AWS.
export async function config() {
  if (loadedConfig === null) {
    loadedConfig = (async () => {
      let response;
      try {
        response = await fetch("config.json", { cache: "no-store" });
      } catch (error) {
        throw new ApiError(0, "NO_CONFIG", `config.json could not be fetched (${error.message})`, "GET config.json");
      }
      if (!response.ok) {
        throw new ApiError(response.status, "NO_CONFIG",
          "config.json is missing: serve the console with `merchandiser console` or deploy the console stack",
          "GET config.json");
      }
      return response.json();
    })();
  }
  return loadedConfig;
}

export class ApiError extends Error {
  constructor(status, code, message, request) {
    super(message);
    this.status = status;
    this.code = code;
    this.request = request;
  }

  get title() {
    return this.status ? `${this.request} failed: ${this.status} ${this.code}` : `${this.request} failed: ${this.code}`;
  }
}

export async function api(method, path, body) {
  const cfg = await config();
  const request = `${method} ${path}`;
  const url = `${cfg.apiBase}${path}`;
  let headers = { Accept: "application/json" };
  const data = body === undefined ? undefined : JSON.stringify(body);
  if (data !== undefined) headers["Content-Type"] = "application/json";
  if (cfg.mode === "aws") headers = await signedHeaders(cfg, method, url, data, headers);
  let response;
  try {
    response = await fetch(url, { method, headers, body: data });
  } catch (error) {
    throw new ApiError(0, "NETWORK", `the API could not be reached (${error.message})`, request);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const code = (json && json.error) || `HTTP_${response.status}`;
    const message = (json && json.message) || (text
      ? `the API answered ${response.status} ${response.statusText} without a readable message`
      : `the API answered ${response.status} ${response.statusText} with an empty body`);
    throw new ApiError(response.status, code, message, request);
  }
  if (json === null) throw new ApiError(response.status, "NOT_JSON", "the API's answer is not JSON", request);
  return json;
}

// GET with a query built from an object (undefined and empty values left out), every part percent-encoded
// (never "+" for a space: SigV4 signs the query as sent).
export function get(path, query = {}) {
  const suffix = Object.entries(query)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`)
    .join("&");
  return api("GET", suffix ? `${path}?${suffix}` : path);
}

export const encode = encodeURIComponent;
