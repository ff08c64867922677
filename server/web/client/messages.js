// What a refusal means to a viewer, from the problem+json `code` the service answered.
import { api } from "./api.js";
import { date } from "./format.js";

/**
 * Why the key server refused a key, in words: {title, text, action} where action is
 * "buy" (the series page's paywall), "renew" (a new playback token), "sign-in", "retry" or null.
 * A 403 not_entitled means either "never bought" or "bought, then refunded": the viewer's ended
 * entitlements (GET /v1/me/entitlements?include=ended) tell which.
 */
export async function explainKeyRefusal(code, seriesId) {
  switch (code) {
    case "token_expired":
      return { title: "Your viewing session expired", action: "renew",
        text: "The player could not renew its pass in time. Continue to get a new one and pick up where you stopped." };
    case "token_revoked":
      return { title: "You were signed out everywhere", action: "sign-in",
        text: "This account's sign-ins were revoked. Sign in again to keep watching." };
    case "session_limit_reached":
      return { title: "Already playing on too many screens", action: "retry",
        text: "This account is watching on as many screens as it may at once. Stop one of them, then continue; "
          + "a screen that was simply closed frees its place within a few minutes." };
    case "token_invalid":
      return { title: "This player's pass is not valid", action: "renew",
        text: "The playback token was refused. Continue to get a new one." };
    case "not_entitled":
      return notEntitled(seriesId);
    case "token_wrong_series":
      return { title: "This pass is for another series", action: "renew", text: "Continue to get the right one." };
    case "episode_unpublished":
      return { title: "This episode is unavailable", action: null,
        text: "Its creator has unpublished it for now. The rest of the series still plays." };
    case "episode_deleted":
      return { title: "This episode was removed", action: null, text: "Its creator deleted it." };
    case "rate_limited":
    case "too_many_auth_failures":
      return { title: "Too many requests", action: "retry", text: "Wait a moment, then continue." };
    default:
      return { title: "The video could not be opened", action: "retry",
        text: `The service refused the key (${code}). Try again; if it keeps happening, contact support.` };
  }
}

async function notEntitled(seriesId) {
  let ended = null;
  try {
    const answer = await api("/v1/me/entitlements?include=ended");
    ended = answer.entitlements.find((e) => e.series_id === seriesId && e.ended_by);
  } catch {
    // not signed in or the service is away: say what is certain
  }
  if (ended?.ended_by === "refunded") {
    return { title: "This series was refunded", action: "buy", code: "refunded",
      text: `Your purchase was refunded on ${date(ended.revoked_at)}, so its episodes no longer play. Buy it again to keep watching.` };
  }
  if (ended?.ended_by === "charged_back") {
    return { title: "This purchase was charged back", action: "buy", code: "charged_back",
      text: "Your bank reversed the payment, so the series no longer plays. Buy it again to keep watching." };
  }
  if (ended) {
    return { title: "Your access was withdrawn", action: null, code: "revoked",
      text: `Access to this series was taken away on ${date(ended.revoked_at)}. Contact support if this is a mistake.` };
  }
  return { title: "Buy the series to watch this episode", action: "buy", code: "not_bought",
    text: "This episode is part of a paid series you have not bought." };
}

/** A problem code from the catalog API, in words, for notices. */
export function describe(error) {
  switch (error.code) {
    case "unknown_series": return "There is no such series, or it is no longer listed.";
    case "unknown_episode": return "There is no such episode in this series.";
    case "network_error": return error.detail;
    case "series_not_for_sale": return "This series is not for sale at the moment.";
    case "payment_below_price": return "The payment did not cover the price.";
    case "test_payments_off": return "Test purchases are off on this service.";
    case "local_sign_in_off": return "Local sign-in is off on this service: sign in through the app that sent you here.";
    case "invalid_field":
    case "invalid_id": return `That was not accepted: ${error.detail}`;
    default: return `${error.detail || "Something went wrong"} (${error.code}).`;
  }
}
