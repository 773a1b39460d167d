// @ts-check
// Who is signed in (from `GET /api/whoami`): the role decides which pages
// the nav offers; the server refuses the rest anyway.

/** @type {string|null} */
let current = null;
export const role = () => current;
/** @param {string|null} r */
export const setRole = (r) => { current = r; };
