// Tests start servers on ports nobody else uses: the product's own helper.
export { freePort } from '../../activities/pg/ports';
