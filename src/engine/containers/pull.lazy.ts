/** The registry client, loaded only when `run`/`create` must pull: it is most of a megabyte of code. */
export { pull } from '../pull.ts';
