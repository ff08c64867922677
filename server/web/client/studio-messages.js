// What the studio says to a creator: the eligibility rules in plain words with what to do about each,
// the stages an upload goes through, and why an upload or an edit was refused.
import { describe } from "./messages.js";

/** What to do about an unmet eligibility rule (drm/catalog/eligibility.py's codes). */
export function ruleAdvice(code, { mayApply = false } = {}) {
  if (code === "too_few_followers" && mayApply) {
    return "Grow to 10,000 followers, or apply below with a link to premium content you already sell elsewhere.";
  }
  return RULE_ADVICE[code] || "Contact support to find out what to change.";
}

const RULE_ADVICE = {
  too_young: "Nothing to do for now: you can sell series once you reach the minimum age.",
  account_too_new: "Keep using your account: it qualifies once it is more than 30 days old.",
  account_private: "Make your account public in your account's privacy settings.",
  account_political: "Political accounts cannot sell series; a personal or business account can.",
  too_few_posts: "Publish 3 or more public videos; the count looks back 30 days.",
  too_few_followers: "Grow to 10,000 followers. Once this is the only rule you miss, you can apply with premium content you sell elsewhere.",
  too_few_views: "Your public videos need 1,000 views in total within 30 days.",
  content_not_original: "Post content of your own: reposts and compilations do not count as original.",
  not_in_good_standing: "Resolve the community-guideline violations on your account (see its safety notices).",
};

/** A creator's eligibility status in a headline and a sentence. */
export function eligibilitySummary(status) {
  switch (status.status) {
    case "eligible": return ["You can sell series", "Your account meets every rule."];
    case "approved": return ["You can sell series", "Your application was approved."];
    case "pending_manual_approval": return ["Your application is being reviewed",
      "We are looking at the premium content you sell elsewhere; you can create series once it is approved."];
    case "rejected": return ["Your application was not approved", status.reason || "You can apply again once your account meets the rules."];
    case "not_checked": return ["Your account has not been checked yet",
      "Selling series opens once your account's facts have been checked against the rules. Ask support for a check."];
    default: return ["You cannot sell series yet",
      "Your account does not meet these rules. The verdict is updated when your account's facts are checked again."];
  }
}

// The steps an episode goes through after its file arrives (the ingest job's stages), then published.
export const STAGES = [
  ["uploading", "Uploading"],
  ["validating", "Checking the file"],
  ["transcoding", "Transcoding"],
  ["packaging", "Packaging"],
  ["publishing", "Publishing"],
  ["published", "Published"],
];

/**
 * Where an episode stands: {stage, percent, label, failed}. `stage` is one of STAGES' names (queued counts
 * as validating: it is next); an errored episode is failed at the step it reached.
 */
export function episodeStage(episode) {
  if (episode.status === "ready" || episode.status === "unpublished") {
    return { stage: "published", percent: 100, label: episode.status === "unpublished" ? "Unpublished" : "Published", failed: false };
  }
  if (episode.status === "errored") return { stage: "failed", percent: 0, label: "Rejected", failed: true };
  const processing = episode.processing;
  if (!processing || processing.stage === "uploading") return { stage: "uploading", percent: 0, label: "Uploading", failed: false };
  const stage = processing.stage === "queued" ? "validating" : processing.stage;
  const name = STAGES.find(([key]) => key === stage)?.[1] || stage;
  const percent = Math.round(processing.percent || 0);
  return { stage, percent, label: stage === "transcoding" ? `${name} ${percent} %` : processing.stage === "queued" ? "Waiting its turn" : name, failed: false };
}

/** Why an upload was refused, from the tus answer's problem+json (or the network). */
export function uploadRefusal(error) {
  const response = error?.originalResponse;
  if (!response) return "The connection was lost. The upload resumes where it stopped when the network is back.";
  let problem = null;
  try {
    problem = JSON.parse(response.getBody() || "null");
  } catch {
    problem = null;
  }
  const status = response.getStatus();
  switch (problem?.code) {
    case "upload_too_large": return `This file is too large. ${problem.detail}`;
    case "too_many_uploads": return "You have too many uploads under way: let some finish, then try again.";
    case "episode_limit_reached": return "This series already holds 80 episodes, the most a series may have.";
    case "creator_not_eligible": return "Your account cannot sell series at the moment (see the studio's home page).";
    case "series_archived": return "This series is archived: nothing can be added to it.";
    default:
      return problem ? describe({ code: problem.code, detail: problem.detail }) : `The service refused the upload (HTTP ${status}).`;
  }
}
