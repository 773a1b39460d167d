// @ts-check
// The statuses, their transitions and where each bulk action applies, as
// the server declares them (`GET /api/dashboard/statuses`, from the one
// state machine in `schemas`): the page never spells them itself.
import { api } from "./api.js";

/** @type {{statuses: {status: string, next: string[], terminal: boolean}[], actions: Record<string, string[]>, max_bulk: number}|null} */
let contract = null;

export async function loadContract() {
  if (!contract) contract = await api("/api/dashboard/statuses");
  return contract;
}

/** @param {string} action @param {string} status */
export const allows = (action, status) => !!contract && (contract.actions[action] || []).includes(status);

export const statuses = () => (contract ? contract.statuses.map((s) => s.status) : []);
